"""The correlation id of the unit of work in progress (an HTTP request, a worker job run).

A context variable, so that the audit trail and log lines stamp it without every layer passing
it along. Set by the HTTP layer from ``X-Request-Id`` (or generated) and by the worker per job.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("scim_bridge_correlation_id", default=None)

# What we accept from a caller's X-Request-Id: printable, short, no header-splitting characters.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_id() -> str:
    return uuid.uuid4().hex


def accept(candidate: str | None) -> str:
    """The caller's id when it is safe to echo and log, else a fresh one."""
    if candidate and _ACCEPTABLE.match(candidate):
        return candidate
    return new_id()


def current() -> str | None:
    return _current.get()


@contextlib.contextmanager
def bound(correlation_id: str) -> Iterator[str]:
    token = _current.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _current.reset(token)


def set_current(correlation_id: str | None) -> None:
    """For frameworks with before/after hooks instead of a with-block (Flask)."""
    _current.set(correlation_id)
