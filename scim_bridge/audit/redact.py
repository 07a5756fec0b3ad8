"""What may enter the audit trail: ``redact()`` is applied to every event's detail, centrally.

Never recorded (issue 3, STYLE.md 8): bearer tokens, client secrets, passwords (Okta sends a
placeholder ``password`` on every create), cookies, raw upstream bodies. Callers should not pass
them in the first place; this is the net under them, so it errs on the side of dropping.

- a value under a secret-looking key (``password``, ``client_secret``, ``Authorization``,
  ``x-api-key``, ``refresh_token``, ...) is replaced by ``"[redacted]"``, at any depth;
- a string that looks like a credential wherever it is (``Bearer ...``, ``Basic ...``, a JWT)
  is replaced by ``"[redacted]"``;
- a string that looks like a raw body (starts with ``{``, ``[`` or ``<``) or is longer than
  ``MAX_STRING`` characters is replaced by ``"[omitted: N chars]"``: keeping a prefix could keep
  the secret inside it;
- exceptions become their type name only (an SDK exception's ``str()`` carries headers and body);
- datetimes become canonical UTC text; tuples, sets and dataclasses become lists and objects.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from scim_bridge.timestamps import iso

REDACTED = "[redacted]"
MAX_STRING = 1024
MAX_DEPTH = 12

# Keys are compared lower-cased with "-" and " " read as "_".
_SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "bearer",
        "credential",
        "credentials",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "api_key",
        "apikey",
        "x_api_key",
        "private_key",
        "session",
        "session_id",
        "sessionid",
        "otp",
    }
)
# ``token_name`` / ``token_id`` (which SCIM token was used) are fine; ``*_token`` is not.
_SECRET_SUFFIXES = ("_password", "_passwd", "_secret", "_token", "_api_key", "_apikey", "_cookie")
_SECRET_INFIXES = ("password", "secret", "passwd")

_CREDENTIAL_VALUE = re.compile(
    r"^\s*(?:(?:bearer|basic|digest|token)\s+\S+"
    r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    norm = re.sub(r"[-\s.]", "_", key.strip().lower())
    return (
        norm in _SECRET_KEYS
        or norm.endswith(_SECRET_SUFFIXES)
        or any(part in norm for part in _SECRET_INFIXES)
    )


def scrub_string(text: str) -> str:
    """A string as it may be recorded (also applied to actor, ids and outcome)."""
    if _CREDENTIAL_VALUE.match(text):
        return REDACTED
    stripped = text.lstrip()
    if len(text) > MAX_STRING or stripped[:1] in ("{", "[", "<"):
        return f"[omitted: {len(text)} chars]"
    return text


def redact(detail: Mapping[str, object] | None) -> dict[str, Any]:
    """A JSON-ready copy of ``detail`` with nothing the trail must not hold."""
    if detail is None:
        return {}
    cleaned = _clean(detail, 0)
    assert isinstance(cleaned, dict)
    return cleaned


# What a cleaner returns for a value that is not of its kinds.
_UNHANDLED = object()


def _clean(value: object, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return "[omitted: nested too deep]"
    for clean in (_clean_scalar, _clean_collection):
        cleaned = clean(value, depth)
        if cleaned is not _UNHANDLED:
            return cleaned
    return _clean_object(value, depth)


def _clean_scalar(value: object, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return int(value) if isinstance(value, enum.IntEnum) else value
    if isinstance(value, enum.Enum):
        return _clean(value.value, depth)
    if isinstance(value, str):
        return scrub_string(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return _UNHANDLED


def _clean_collection(value: object, depth: int) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key.value) if isinstance(key, enum.Enum) else str(key)
            out[scrub_string(name)] = REDACTED if is_secret_key(name) else _clean(item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_clean(item, depth + 1) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_clean(item, depth + 1) for item in value), key=repr)
    return _UNHANDLED


def _clean_object(value: object, depth: int) -> Any:
    if isinstance(value, datetime):
        return iso(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date | uuid.UUID | Decimal):
        return value.isoformat() if isinstance(value, date) else str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _clean(fields, depth)
    if isinstance(value, BaseException):
        return {"exception": type(value).__name__}
    # Anything else: its type, never its str() (which may be a body or carry a secret).
    return f"<{type(value).__name__}>"
