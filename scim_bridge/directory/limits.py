"""What one SCIM request may spend on Genesys: a deadline across all its directory calls
(``SCIM_REQUEST_DEADLINE``) and a number of calls (``SCIM_MAX_GENESYS_CALLS``).

The SCIM layer opens ``RequestLimits`` for each request (``begin``/``end``); ``Directory`` charges
every gateway call it makes against them (``charge``). Without limits (the worker, commands) a call
has only its own per-call deadline. The deprovisioning engine's calls are not charged: a job run
inline has its own budget (``SCIM_SYNC_BUDGET_S``) and must never be cut by a read's cap.
"""

from __future__ import annotations

import contextvars
import dataclasses
import time

from scim_bridge.directory.errors import TooMany, Unavailable


@dataclasses.dataclass
class RequestLimits:
    deadline: float  # time.monotonic()
    max_calls: int
    calls: int = 0


_CURRENT: contextvars.ContextVar[RequestLimits | None] = contextvars.ContextVar(
    "scim_bridge_request_limits", default=None
)


def begin(deadline_s: float, max_calls: int) -> RequestLimits:
    limits = RequestLimits(time.monotonic() + deadline_s, max_calls)
    _CURRENT.set(limits)
    return limits


def end() -> None:
    _CURRENT.set(None)


def current() -> RequestLimits | None:
    return _CURRENT.get()


def charge(call_deadline: float) -> float:
    """One more directory call: its deadline (never past the request's), or ``TooMany`` past
    the call cap, or ``Unavailable`` once the request's deadline has passed."""
    limits = _CURRENT.get()
    if limits is None:
        return call_deadline
    limits.calls += 1
    if limits.calls > limits.max_calls:
        raise TooMany(
            f"This request needs more than the {limits.max_calls} Genesys calls one request may "
            "make: narrow the filter or ask for fewer resources per page."
        )
    now = time.monotonic()
    if now >= limits.deadline:
        raise Unavailable(
            "The request ran out of time waiting for Genesys Cloud.", retry_after_s=30.0
        )
    return min(call_deadline, limits.deadline)
