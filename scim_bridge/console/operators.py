"""Named operators and their console sessions.

``scim-bridge operators create --name alice`` stores a personal token's SHA-256 (the token is
printed once, as for SCIM tokens: 256 random bits, so a fast hash is enough) and every action
taken with it is audited as ``operator:alice``. A revoked operator keeps its row: the name stays
on the audit trail and cannot be given to somebody else.

Signing in to ``/admin/ui`` with the token opens a session: the cookie carries 256 random bits,
the table their SHA-256 with the session's CSRF token and expiry. Sessions live in the database,
so every process and replica honours them and signing out (or revoking the operator) ends them
everywhere at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import time

import sqlalchemy as sa

from scim_bridge.store.engine import write_transaction
from scim_bridge.store.schema import operator_sessions, operators
from scim_bridge.timestamps import iso

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
PREFIX = "scimop_"
MAX_TOKEN_LENGTH = 512
SESSION_S = 8 * 3600.0  # a working day; signing in again costs one paste

ACTOR_PREFIX = "operator:"


def actor(name: str) -> str:
    """The audit actor of an operator's actions."""
    return f"{ACTOR_PREFIX}{name}"


class OperatorError(ValueError):
    """A name that cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class Operator:
    name: str
    created_at: str
    revoked_at: str | None


@dataclasses.dataclass(frozen=True)
class Session:
    operator: str
    csrf_token: str
    expires_at: float


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class OperatorStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- operators -------------------------------------------------------------------------

    def create(self, name: str) -> str:
        """Store a new operator and return the personal token (the only time it is seen)."""
        if not NAME.match(name):
            raise OperatorError(
                "an operator name is 1-100 letters, digits, '.', '_' or '-' (e.g. alice)"
            )
        token = PREFIX + secrets.token_urlsafe(32)
        with write_transaction(self.engine) as conn:
            existing = conn.execute(
                sa.select(operators.c.revoked_at).where(operators.c.name == name)
            ).first()
            if existing is not None:
                state = "was revoked; pick another name" if existing[0] else "exists"
                raise OperatorError(f"an operator named {name!r} {state}")
            conn.execute(
                operators.insert().values(name=name, token_sha256=digest(token), created_at=iso())
            )
        return token

    def list(self) -> list[Operator]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(operators).order_by(operators.c.name)).mappings().all()
        return [Operator(r["name"], r["created_at"], r["revoked_at"]) for r in rows]

    def live(self, name: str) -> bool:
        """Whether ``name`` is an operator and not revoked."""
        query = sa.select(operators.c.name).where(
            operators.c.name == name, operators.c.revoked_at.is_(None)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def revoke(self, name: str) -> bool:
        """Revoke a live operator and end its sessions; False if there is none by that name."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                operators.update()
                .where(operators.c.name == name, operators.c.revoked_at.is_(None))
                .values(revoked_at=iso())
            )
            conn.execute(operator_sessions.delete().where(operator_sessions.c.operator == name))
        return bool(done.rowcount)

    def verify(self, presented: str) -> str | None:
        """The name of the live operator whose token ``presented`` is, or None."""
        if not presented or len(presented) > MAX_TOKEN_LENGTH:
            return None
        wanted = digest(presented)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(operators.c.name, operators.c.token_sha256).where(
                    operators.c.revoked_at.is_(None)
                )
            ).all()
        found: str | None = None
        for name, stored in rows:  # every row, constant time each: no early exit to time
            if hmac.compare_digest(stored, wanted):
                found = name
        return found

    # -- sessions --------------------------------------------------------------------------

    def open_session(self, name: str, *, now: float | None = None) -> tuple[str, Session]:
        """A new session for ``name``: (the cookie value, the session)."""
        now = time.time() if now is None else now
        cookie = secrets.token_urlsafe(32)
        session = Session(name, secrets.token_urlsafe(32), now + SESSION_S)
        with write_transaction(self.engine) as conn:
            conn.execute(operator_sessions.delete().where(operator_sessions.c.expires_at < now))
            conn.execute(
                operator_sessions.insert().values(
                    id_sha256=digest(cookie),
                    operator=name,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )
        return cookie, session

    def session(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The live session the cookie names (its operator not revoked), or None."""
        if not cookie or len(cookie) > MAX_TOKEN_LENGTH:
            return None
        now = time.time() if now is None else now
        query = (
            sa.select(
                operator_sessions.c.operator,
                operator_sessions.c.csrf_token,
                operator_sessions.c.expires_at,
            )
            .join(operators, operators.c.name == operator_sessions.c.operator)
            .where(
                operator_sessions.c.id_sha256 == digest(cookie),
                operator_sessions.c.expires_at > now,
                operators.c.revoked_at.is_(None),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else Session(row[0], row[1], float(row[2]))

    def close_session(self, cookie: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                operator_sessions.delete().where(operator_sessions.c.id_sha256 == digest(cookie))
            )
