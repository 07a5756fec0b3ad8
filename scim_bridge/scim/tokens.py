"""SCIM bearer tokens, one per IdP connection (``scim-bridge tokens create --name okta-prod``).

A token is 256 random bits, printed once; only its SHA-256 is stored (a fast hash is enough for a
high-entropy secret: there is nothing to brute-force). Verification hashes the presented value and
compares it with every live token's hash in constant time; the token's name is the audit actor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets

import sqlalchemy as sa

from scim_bridge.store.engine import write_transaction
from scim_bridge.store.schema import scim_tokens as table
from scim_bridge.timestamps import iso

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
PREFIX = "scimb_"
MIN_IMPORTED_LENGTH = 20
MAX_TOKEN_LENGTH = 512


class TokenError(ValueError):
    """A name or a token value that cannot be accepted; the message says why."""


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    name: str
    created_at: str
    revoked_at: str | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


class TokenStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, name: str, token: str | None = None) -> str:
        """Store a token under ``name`` and return it (the only time it is seen)."""
        if not NAME.match(name):
            raise TokenError(
                "a token name is 1-100 letters, digits, '.', '_' or '-' (e.g. okta-prod)"
            )
        if token is None:
            token = new_token()
        elif len(token) < MIN_IMPORTED_LENGTH or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError(
                f"an imported token must be {MIN_IMPORTED_LENGTH} to {MAX_TOKEN_LENGTH} characters"
            )
        elif any(c.isspace() for c in token) or not token.isprintable():
            raise TokenError("an imported token must be printable, without spaces")
        with write_transaction(self.engine) as conn:
            exists = conn.execute(sa.select(table.c.name).where(table.c.name == name)).first()
            if exists is not None:
                raise TokenError(f"a token named {name!r} exists; revoke it first")
            taken = conn.execute(
                sa.select(table.c.name).where(table.c.token_sha256 == digest(token))
            ).first()
            if taken is not None:
                raise TokenError("that token value is already in use")
            conn.execute(
                table.insert().values(name=name, token_sha256=digest(token), created_at=iso())
            )
        return token

    def list(self) -> list[TokenInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.name)).all()
        return [
            TokenInfo(r._mapping["name"], r._mapping["created_at"], r._mapping["revoked_at"])
            for r in rows
        ]

    def revoke(self, name: str) -> bool:
        """Revoke by deleting the row (a revoked name can be created again)."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(table.delete().where(table.c.name == name))
        return bool(done.rowcount)

    def verify(self, presented: str) -> str | None:
        """The name of the live token ``presented`` is, or None."""
        if not presented or len(presented) > MAX_TOKEN_LENGTH:
            return None
        wanted = digest(presented)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.name, table.c.token_sha256).where(table.c.revoked_at.is_(None))
            ).all()
        found: str | None = None
        for name, stored in rows:
            if hmac.compare_digest(stored, wanted):
                found = name
        return found
