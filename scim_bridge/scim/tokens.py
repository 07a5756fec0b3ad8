"""SCIM bearer tokens, one per IdP connection (``scim-bridge tokens create --name okta-prod``).

A token is 256 random bits, printed once; only its SHA-256 is stored (a fast hash is enough for a
high-entropy secret: there is nothing to brute-force). Verification hashes the presented value and
compares it with every live token's hash in constant time; the token's name is the audit actor
and the owner of what is written through it.

A token also carries (issue 14): its *scopes* (``email:GLOB``, ``division:ID``; a union; none is
the whole org, ``directory/access.py``), the *IdP* it serves (``okta``, ``entra``, ``other``: how
a rate-limited answer is shaped), an optional *expiry*, and during a rotation the previous
secret's hash with the time it stops being accepted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from scim_bridge.directory.access import Access, Scope, ScopeError
from scim_bridge.store.engine import write_transaction
from scim_bridge.store.schema import directory_resources
from scim_bridge.store.schema import scim_tokens as table
from scim_bridge.timestamps import iso

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
PREFIX = "scimb_"
MIN_IMPORTED_LENGTH = 20
MAX_TOKEN_LENGTH = 512
MAX_VERIFIED = 1000  # tokens remembered as verified (a handful in practice: one per IdP)
IDPS = ("okta", "entra", "other")
DEFAULT_IDP = "other"


class TokenError(ValueError):
    """A name or a token value that cannot be accepted; the message says why."""


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    name: str
    created_at: str
    revoked_at: str | None
    scopes: tuple[Scope, ...] = ()
    idp: str = DEFAULT_IDP
    expires_at: str | None = None
    previous_valid_until: str | None = None


@dataclasses.dataclass(frozen=True)
class TokenIdentity:
    """Who a request authenticated as: the token's name, what it may reach, its IdP."""

    name: str
    scopes: tuple[Scope, ...] = ()
    idp: str = DEFAULT_IDP

    @property
    def access(self) -> Access:
        return Access(owner=self.name, scopes=self.scopes)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC)


def _scopes(text: str | None) -> tuple[Scope, ...]:
    if not text:
        return ()
    return tuple(Scope.parse(s) for s in json.loads(text))


def _check_value(token: str) -> None:
    if len(token) < MIN_IMPORTED_LENGTH or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError(
            f"an imported token must be {MIN_IMPORTED_LENGTH} to {MAX_TOKEN_LENGTH} characters"
        )
    if any(c.isspace() for c in token) or not token.isprintable():
        raise TokenError("an imported token must be printable, without spaces")


# How long a process trusts a token it verified (``TokenStore.identify``): a token revoked, rotated
# or expired elsewhere (the ``tokens`` command is another process) stops working in a serving
# process within this many seconds; one changed through the same store stops at once.
VERIFIED_TTL_S = 5.0


class TokenStore:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        verified_ttl_s: float = VERIFIED_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.verified_ttl_s = verified_ttl_s
        self.clock = clock  # for the TTL; a test steps it rather than waiting
        # sha256 of a presented token -> (trusted until, its identity, the end of its validity)
        self._verified: dict[str, tuple[float, TokenIdentity, str | None]] = {}
        self._lock = threading.Lock()

    def _forget(self) -> None:
        with self._lock:
            self._verified.clear()

    def create(
        self,
        name: str,
        token: str | None = None,
        *,
        scopes: tuple[str, ...] | list[str] = (),
        idp: str = DEFAULT_IDP,
        expires_in_s: float | None = None,
    ) -> str:
        """Store a token under ``name`` and return it (the only time it is seen)."""
        if not NAME.match(name):
            raise TokenError(
                "a token name is 1-100 letters, digits, '.', '_' or '-' (e.g. okta-prod)"
            )
        if idp not in IDPS:
            raise TokenError(f"--idp is one of {', '.join(IDPS)}, got {idp!r}")
        try:
            parsed = tuple(dict.fromkeys(Scope.parse(s) for s in scopes))
        except ScopeError as e:
            raise TokenError(str(e)) from None
        if expires_in_s is not None and expires_in_s <= 0:
            raise TokenError("--expires must be a positive duration such as 90d")
        if token is None:
            token = new_token()
        else:
            _check_value(token)
        with write_transaction(self.engine) as conn:
            exists = conn.execute(sa.select(table.c.name).where(table.c.name == name)).first()
            if exists is not None:
                raise TokenError(f"a token named {name!r} exists; revoke it first")
            self._refuse_taken(conn, token)
            conn.execute(
                table.insert().values(
                    name=name,
                    token_sha256=digest(token),
                    created_at=iso(_now()),
                    scopes=json.dumps([str(s) for s in parsed]) if parsed else None,
                    idp=idp,
                    expires_at=(
                        iso(_now() + timedelta(seconds=expires_in_s))
                        if expires_in_s is not None
                        else None
                    ),
                )
            )
        self._forget()
        return token

    @staticmethod
    def _refuse_taken(conn: sa.Connection, token: str) -> None:
        wanted = digest(token)
        taken = conn.execute(
            sa.select(table.c.name).where(
                (table.c.token_sha256 == wanted) | (table.c.previous_sha256 == wanted)
            )
        ).first()
        if taken is not None:
            raise TokenError("that token value is already in use")

    def list(self) -> list[TokenInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.name)).all()
        return [self._info(r._mapping) for r in rows]

    def get(self, name: str) -> TokenInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.name == name)).first()
        return None if row is None else self._info(row._mapping)

    @staticmethod
    def _info(m: sa.RowMapping) -> TokenInfo:
        return TokenInfo(
            name=m["name"],
            created_at=m["created_at"],
            revoked_at=m["revoked_at"],
            scopes=_scopes(m["scopes"]),
            idp=m["idp"] or DEFAULT_IDP,
            expires_at=m["expires_at"],
            previous_valid_until=m["previous_valid_until"],
        )

    def revoke(self, name: str) -> bool:
        """Revoke by deleting the row (a revoked name can be created again). What the token owns
        stays owned by its name: ``transfer`` it first, or nobody else will see it."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(table.delete().where(table.c.name == name))
        self._forget()
        return bool(done.rowcount)

    def rotate(self, name: str, *, overlap_s: float, token: str | None = None) -> tuple[str, str]:
        """A new secret for ``name``; the current one stays valid for ``overlap_s`` more seconds
        (0: not at all). Returns (new token, the old one's end as ISO text). Scopes, IdP, expiry
        and everything the token owns stay as they are (the name is the owner)."""
        if overlap_s < 0:
            raise TokenError("--overlap must be 0 or a positive duration such as 24h")
        if token is None:
            token = new_token()
        else:
            _check_value(token)
        until = iso(_now() + timedelta(seconds=overlap_s))
        with write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(table).where(table.c.name == name)).first()
            if row is None:
                raise TokenError(f"no token named {name!r}")
            self._refuse_taken(conn, token)
            conn.execute(
                table.update()
                .where(table.c.name == name)
                .values(
                    token_sha256=digest(token),
                    previous_sha256=row._mapping["token_sha256"] if overlap_s > 0 else None,
                    previous_valid_until=until if overlap_s > 0 else None,
                )
            )
        self._forget()
        return token, until

    def transfer(
        self,
        source: str,
        target: str,
        *,
        record: Callable[[sa.Connection, int], object] | None = None,
    ) -> int:
        """Move every resource ``source`` owns to ``target`` (an IdP migration); their count.
        ``record(conn, count)`` runs in the same transaction (the audit event: both or neither)."""
        with write_transaction(self.engine) as conn:
            if conn.execute(sa.select(table.c.name).where(table.c.name == target)).first() is None:
                raise TokenError(f"no token named {target!r} to transfer to")
            if source == target:
                raise TokenError("--from and --to name the same token")
            done = conn.execute(
                directory_resources.update()
                .where(directory_resources.c.owner == source)
                .values(owner=target)
            )
            moved = int(done.rowcount)
            if record is not None:
                record(conn, moved)
        return moved

    def owned(self) -> dict[str, int]:
        """How many users and groups each owner (token name) holds, revoked names included."""
        column = directory_resources.c.owner
        query = sa.select(column, sa.func.count()).where(column.is_not(None)).group_by(column)
        with self.engine.connect() as conn:
            return {str(name): int(n) for name, n in conn.execute(query).all()}

    def verify(self, presented: str) -> str | None:
        """The name of the live token ``presented`` is, or None."""
        identity = self.identify(presented)
        return None if identity is None else identity.name

    def identify(self, presented: str) -> TokenIdentity | None:
        """The live, unexpired token ``presented`` is (its current secret, or its previous one
        inside a rotation's overlap), or None.

        A token found is trusted for ``verified_ttl_s`` (5 s) without reading the database again,
        never past its expiry or the end of its rotation overlap; one refused is not remembered
        (a token created a moment ago works at once)."""
        if not presented or len(presented) > MAX_TOKEN_LENGTH:
            return None
        wanted = digest(presented)
        now_s = self.clock()
        with self._lock:
            known = self._verified.get(wanted)
        if known is not None:
            until, identity, valid_until = known
            if now_s < until and (valid_until is None or iso(_now()) < valid_until):
                return identity
        found = self._lookup(wanted)
        with self._lock:
            if found is None:
                self._verified.pop(wanted, None)
            else:
                if len(self._verified) >= MAX_VERIFIED:
                    self._verified.clear()
                self._verified[wanted] = (now_s + self.verified_ttl_s, *found)
        return None if found is None else found[0]

    def _lookup(self, wanted: str) -> tuple[TokenIdentity, str | None] | None:
        """The identity the digest ``wanted`` is now, and when that ends (None: no end)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.revoked_at.is_(None))).all()
        now = iso(_now())
        found: tuple[TokenIdentity, str | None] | None = None
        for row in rows:
            m = row._mapping
            current = hmac.compare_digest(m["token_sha256"], wanted)
            previous = hmac.compare_digest(m["previous_sha256"] or "", wanted) and bool(
                m["previous_valid_until"] and now < m["previous_valid_until"]
            )
            live = m["expires_at"] is None or now < m["expires_at"]
            if (current or previous) and live:
                ends = [m["expires_at"]] + ([m["previous_valid_until"]] if not current else [])
                found = (
                    TokenIdentity(m["name"], _scopes(m["scopes"]), m["idp"] or DEFAULT_IDP),
                    min((e for e in ends if e), default=None),
                )
        return found
