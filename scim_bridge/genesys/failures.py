"""What went wrong with one HTTP exchange: the bridge's exception for it, and whether (and how)
the retry policy may try again.

Reads only ``status``, ``headers`` and ``body`` of an ``ApiException`` (``rest.py:257-269``),
never its ``str()`` (which prints headers and body), and scrubs those fields before the exception
is chained as ``__cause__`` of ours, so that a logged traceback cannot carry them either.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3

from scim_bridge.genesys.errors import (
    ActiveConversation,
    AuthenticationFailed,
    BadRequest,
    Conflict,
    GenesysError,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    VersionConflict,
)

# TF treats a 400 with this phrase as a stale version (util_retries.go:166-177; genesys-api.md 2.3).
_VERSION_PHRASE = "does not match the current version"
_MAX_MESSAGE = 300


class Kind(enum.Enum):
    THROTTLED = "throttled"  # 429, or 503 with Retry-After: not processed; any method may retry
    NOT_SENT = "not_sent"  # no connection was made: any method may retry
    AMBIGUOUS = "ambiguous"  # 5xx, 408, read timeout, reset: only a replayable call may retry
    EXPIRED = "expired"  # 401: fetch a new token once, then retry once
    FINAL = "final"  # retrying will not change the answer


@dataclasses.dataclass(frozen=True)
class Failure:
    kind: Kind
    error: GenesysError
    cause: BaseException
    status: int
    retry_after_s: float | None = None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After``: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)  # HTTPHeaderDict: case-insensitive
    return str(value) if value is not None else None


def _error_body(body: object) -> Mapping[str, Any]:
    """``ErrorBody`` (genesys-api.md 5.3) or an OAuth error (``{"error","description"}``)."""
    if not isinstance(body, str) or not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _short(text: object) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def classify_conflict(code: str | None, message: str | None) -> type[Conflict] | None:
    """The 409 subclass the code or message names, or None when they name none."""
    text = f"{code or ''} {message or ''}".lower()
    if "version" in text:
        return VersionConflict
    if "conversation" in text:
        return ActiveConversation
    if code == "general.conflict":
        return Conflict
    return None


def from_api_exception(e: Any, *, operation: str, conflict: type[Conflict] = Conflict) -> Failure:
    """Map an SDK ``ApiException``. ``conflict`` is the class for a 409 whose code and message
    name no cause (the endpoint's documented 409, e.g. a stale version on PATCH /users)."""
    status = int(e.status or 0)
    headers = e.headers
    body = _error_body(e.body)
    code = _short(body.get("code") or body.get("error"))
    message = _short(
        body.get("message") or body.get("error_description") or body.get("description")
    ) or _short(e.reason)
    correlation_id = _header(headers, "inin-correlation-id") or _short(body.get("contextId"))
    retry_after = parse_retry_after(_header(headers, "retry-after"))
    text = (
        f"{operation} -> {status}"
        + (f" {code}" if code else "")
        + (f": {message}" if message else "")
    )
    kw: dict[str, Any] = {
        "status": status,
        "code": code,
        "correlation_id": correlation_id,
        "retry_after_s": retry_after,
    }

    kind, cls = _classify(status, code, message, retry_after, conflict)
    return Failure(kind, cls(text, **kw), e, status, retry_after)


# Statuses whose meaning needs nothing else from the answer.
_BY_STATUS: dict[int, tuple[Kind, type[GenesysError]]] = {
    401: (Kind.EXPIRED, AuthenticationFailed),
    403: (Kind.FINAL, PermissionDenied),
    404: (Kind.FINAL, NotFound),
    429: (Kind.THROTTLED, RateLimited),
}


def _classify(
    status: int,
    code: str | None,
    message: str | None,
    retry_after: float | None,
    conflict: type[Conflict],
) -> tuple[Kind, type[GenesysError]]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status == 409:
        return Kind.FINAL, classify_conflict(code, message) or conflict
    if status == 400 and message and _VERSION_PHRASE in message.lower():
        return Kind.FINAL, VersionConflict
    if status == 503 and retry_after is not None:
        return Kind.THROTTLED, Unavailable
    if status == 408 or status >= 500:
        return Kind.AMBIGUOUS, Unavailable
    return Kind.FINAL, _final(status)


def _final(status: int) -> type[GenesysError]:
    if status == 0:  # built without a response (rest.py:196-198, an SSL error)
        return Unavailable
    return BadRequest if 400 <= status < 500 else GenesysError


def from_transport_error(e: urllib3.exceptions.HTTPError, *, operation: str) -> Failure:
    """Map a urllib3 error: the request got no HTTP response."""
    name = type(e).__name__
    if isinstance(e, urllib3.exceptions.SSLError):
        # A certificate or protocol mismatch: trying again will not fix it.
        return Failure(Kind.FINAL, Unavailable(f"{operation}: TLS failed ({name})", status=0), e, 0)
    if isinstance(e, urllib3.exceptions.ConnectTimeoutError):  # NewConnectionError included
        return Failure(
            Kind.NOT_SENT, Unavailable(f"{operation}: could not connect ({name})", status=0), e, 0
        )
    # Read timeout, connection reset, protocol error: the request may have been processed.
    return Failure(
        Kind.AMBIGUOUS, Unavailable(f"{operation}: no response ({name})", status=0), e, 0
    )


def scrub(e: Any) -> None:
    """Drop the response headers and body from an ``ApiException`` once read (see module doc)."""
    e.headers = None
    e.body = None
