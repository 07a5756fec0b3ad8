"""Whether Genesys answered lately, read from the calls the gateway already makes.

Every exchange the gateway reports is an outcome: a response below 500 is an answer (a 404 or a
429 is Genesys working), no response (status 0) or a 5xx is Genesys unavailable. ``/readyz``
reads the latest outcome, so a load balancer's probes spend no Genesys call while traffic flows.
The change each way is logged once per process: a warning when Genesys stops answering, info
when it answers again (an outage must show at warning level, not only as retried calls).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from scim_bridge.genesys.types import CallRecord

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Outcome:
    at: float  # the clock's time (time.monotonic by default)
    answered: bool
    status: int  # 0 when no response came back
    method: str
    endpoint: str

    def describe(self) -> str:
        what = "no response" if self.status == 0 else f"HTTP {self.status}"
        return f"{what} to {self.method} {self.endpoint}"


class Reachability:
    """The latest outcome of a Genesys exchange in this process (a gateway observer)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: Outcome | None = None
        self._last_answer: float | None = None

    def observe(self, call: CallRecord) -> None:
        outcome = Outcome(
            at=self._clock(),
            answered=0 < call.status < 500,
            status=call.status,
            method=call.method,
            endpoint=call.endpoint,
        )
        with self._lock:
            before = self._last
            self._last = outcome
            if outcome.answered:
                self._last_answer = outcome.at
        if not outcome.answered and (before is None or before.answered):
            _log.warning(
                "genesys unreachable",
                extra={"status": call.status, "endpoint": call.endpoint, "method": call.method},
            )
        elif outcome.answered and before is not None and not before.answered:
            _log.info("genesys answers again", extra={"endpoint": call.endpoint})

    def last(self) -> Outcome | None:
        with self._lock:
            return self._last

    def last_answer_age(self) -> float | None:
        """Seconds since Genesys last answered, None if it has not in this process."""
        with self._lock:
            at = self._last_answer
        return None if at is None else self._clock() - at

    def age(self, outcome: Outcome) -> float:
        return self._clock() - outcome.at
