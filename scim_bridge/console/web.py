"""What every console view shares: the parts it reads and drives, the signed-in session, the
cookie's security flags and the parsing of dates from query strings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from flask import abort, current_app, g, request

from scim_bridge.audit import AuditLog
from scim_bridge.audit.log import parse_iso
from scim_bridge.audit.throttle import FailureThrottle
from scim_bridge.config import Settings
from scim_bridge.console.operators import OperatorStore, Session
from scim_bridge.console.throttle import SignInLimits, SignInThrottle

PREFIX = "/admin/ui"
COOKIE = "scimb_console"
SIGNIN_COOKIE = "scimb_console_signin"
EXTENSION = "scim_bridge.console"


@dataclasses.dataclass
class Parts:
    """What the pages read and drive; handed over by ``create_app``."""

    engine: sa.Engine
    audit: AuditLog
    settings: Settings
    genesys_ready: Callable[[], str]  # raises when Genesys is not reachable
    wake: Callable[[], None] | None = None
    sign_in_limits: SignInLimits = dataclasses.field(default_factory=SignInLimits)


@dataclasses.dataclass
class Console:
    """One per app (``app.extensions[EXTENSION]``): the parts and the stores built on them."""

    parts: Parts
    operators: OperatorStore
    sign_ins: SignInThrottle
    refusals: FailureThrottle  # at most one audit event per address and reason every 10 s

    @classmethod
    def build(cls, parts: Parts) -> Console:
        return cls(
            parts=parts,
            operators=OperatorStore(parts.engine),
            sign_ins=SignInThrottle(parts.engine, parts.sign_in_limits),
            refusals=FailureThrottle(),
        )


def console() -> Console:
    found: Console = current_app.extensions[EXTENSION]
    return found


def session() -> Session:
    """The signed-in session of this request (the guard let it through, so there is one)."""
    current: Session = g.console_session
    return current


def client_address() -> str:
    """The address the request came from, as the server saw it (behind a proxy: the proxy's;
    X-Forwarded-For is not trusted, anybody can send it)."""
    return request.remote_addr or "unknown"


def secure() -> bool:
    return request.is_secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def epoch(text: str | None, *, end: bool = False) -> float | None:
    """A query string's date or time as epoch seconds; ``end``: a bare date means its whole day."""
    if not text:
        return None
    moment = parse_iso_or_400(text)
    value = moment.timestamp()
    if end and len(text.strip()) == 10:
        value += 86400
    return value


def moment(text: str | None) -> datetime | None:
    return parse_iso_or_400(text) if text else None


def parse_iso_or_400(text: str) -> datetime:
    try:
        return parse_iso(text)
    except ValueError:
        abort(400, f"not a date: {text!r}")
