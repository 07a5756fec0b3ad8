"""The gateway's one retry policy (the SDK's own urllib3 retries are off, ``sdk.py``).

* 429, and 503 with ``Retry-After``: wait what Genesys says (the whole gateway waits, see
  ``budget.Backpressure``), any method: the request was not processed.
* No connection made (refused, connect timeout): exponential backoff with full jitter, any method.
* 5xx, 408, read timeout, reset: backoff as above, only for a *replayable* call. The gateway
  marks every call replayable whose replay cannot do harm, because Genesys state is re-read-able:
  GET; the read-only POSTs (search, analytics); DELETEs (a second one answers 404, which the
  gateway reads as "already done"); PATCH/PUT/POST that carry a ``version`` (a replay after the
  first one landed is refused as stale, and the version loop re-reads and finds the work done);
  POST /users (email is unique, deleted users included: a replay answers 409 general.conflict,
  never a second user). Not replayable: POST /groups (nothing unique; a replay could create a
  second group), so an ambiguous failure there surfaces as ``Unavailable``.
* 401: one new token, one retry. Anything else is final.

Every wait is checked against the caller's deadline first: the gateway raises ``RateLimited`` or
``Unavailable`` rather than sleep past it.
"""

from __future__ import annotations

import dataclasses
import random

# Jitter spreads retries out; it guards nothing, so a non-cryptographic generator is right.
_jitter = random.Random()  # noqa: S311


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8  # HTTP attempts for one call, all causes together
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 300.0  # a longer Retry-After is not waited for in-process
    version_attempts: int = 10  # re-read-and-retry on a stale version (TF: 10, genesys-api.md 2.3)
    version_delay_s: float = 0.5  # TF sleeps (i+1) * 500 ms between them

    def backoff(self, retry: int) -> float:
        """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): a uniform draw
        below the exponential cap, so that threads hit by one outage do not retry in step."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** max(retry - 1, 0)))
        return _jitter.uniform(0.0, cap)

    def version_backoff(self, retry: int) -> float:
        return _jitter.uniform(0.0, self.version_delay_s * retry)


DEFAULT_POLICY = RetryPolicy()
