"""The event, its canonical form and the hash chain; pure functions, no database (docs/audit.md).

An event's hash is the SHA-256 (hex) of its canonical JSON: the object below with keys sorted,
no whitespace, ASCII only (Python's ``json.dumps(obj, sort_keys=True, separators=(",", ":"))``)::

    {"actor": ..., "at": "2026-01-31T12:00:00.123456Z", "correlation_id": ..., "detail": {...},
     "genesys_user_id": ..., "idp": ..., "job_id": ..., "outcome": ..., "prev_hash": ...,
     "scim_id": ..., "seq": 17, "tag": "deprovision:user:deactivated"}

``prev_hash`` is the previous event's hash (64 zeros for seq 1), so each hash covers the whole
history before it: an edited, deleted or reordered row breaks the chain from that row on.

With ``AUDIT_HMAC_KEY`` the hash is HMAC-SHA256 under that key instead (a *keyed* event), so that
recomputing the chain after an edit needs the key. A chain may start unkeyed (events written
before the key was configured); once one event is keyed every later one must be, and a verifier
holding the key refuses a head that is not keyed (docs/audit.md "What each check defends
against").

A process without the key knows the chain is keyed when the last event's hash is not the plain
SHA-256 of its canonical form (``is_plain``): it then refuses to append (``AuditKeyRequired``),
since its unkeyed event would read as a downgrade to every later verifier holding the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from scim_bridge.config import ConfigError
from scim_bridge.timestamps import iso

GENESIS_HASH = "0" * 64

# What ``iso()`` writes (timestamps.py): fixed width, so comparing the text compares the time.
_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_at(text: str) -> datetime:
    return datetime.strptime(text, _AT_FORMAT).replace(tzinfo=UTC)


def canonical_json(value: object) -> str:
    """Sorted keys, no whitespace, ASCII; NaN and infinities refused (they are not JSON)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: datetime
    tag: str
    actor: str
    idp: str | None
    correlation_id: str | None
    scim_id: str | None
    genesys_user_id: str | None
    job_id: str | None
    outcome: str
    # An object; the stored text itself when it is not a JSON object (a damaged row, shown as is)
    detail: Mapping[str, Any] | str
    prev_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, Any]:
        """Everything but ``hash``, as it is hashed."""
        return {
            "seq": self.seq,
            "at": iso(self.at),
            "tag": str(self.tag),
            "actor": self.actor,
            "idp": self.idp,
            "correlation_id": self.correlation_id,
            "scim_id": self.scim_id,
            "genesys_user_id": self.genesys_user_id,
            "job_id": self.job_id,
            "outcome": self.outcome,
            "detail": self.detail if isinstance(self.detail, str) else dict(self.detail),
            "prev_hash": self.prev_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.hashed_fields(), "hash": self.hash}

    def to_json(self) -> str:
        """One line of canonical JSON, the export format (JSON Lines)."""
        return canonical_json(self.to_dict())

    def computed_hash(self) -> str:
        return event_hash(self.hashed_fields())


def event_hash(fields: Mapping[str, Any], key: bytes | None = None) -> str:
    """SHA-256 of the canonical form; with ``key``, HMAC-SHA256 under it (a keyed event)."""
    body = canonical_json(dict(fields)).encode("ascii")
    if key is not None:
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


def is_plain(fields: Mapping[str, Any], stored: str) -> bool:
    """Whether ``stored`` is the unkeyed hash of ``fields``. False for a keyed event, and for an
    edited one: either way a process without the key must not chain an event onto it."""
    try:
        return hmac.compare_digest(event_hash(fields), stored)
    except (TypeError, ValueError):  # a detail that is not JSON: damaged, not plain
        return False


class AuditKeyRequired(ConfigError):
    """This process has no ``AUDIT_HMAC_KEY`` and the chain's head is keyed: appending an unkeyed
    event would break the chain for every verifier holding the key."""

    def __init__(self, head_seq: int) -> None:
        super().__init__(
            f"AUDIT_HMAC_KEY is required: the audit chain is keyed (its last event, seq "
            f"{head_seq}, is not a plain SHA-256 hash), and an unkeyed event after it would break "
            "the chain. Set AUDIT_HMAC_KEY to the bridge's key (or run this where it is mounted)."
        )
        self.head_seq = head_seq


def parse_head(text: str) -> tuple[int, str]:
    """``"17:ab12..."`` (what ``audit head`` prints) -> (17, "ab12..."); ValueError otherwise."""
    seq_text, sep, digest = text.strip().partition(":")
    digest = digest.lower()
    if (
        not sep
        or not seq_text.isdigit()
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise ValueError(f"expected SEQ:HASH (e.g. 17:<64 hex digits>), got {text[:80]!r}")
    return int(seq_text), digest


def format_head(seq: int, digest: str) -> str:
    return f"{seq}:{digest}"


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    first_broken_seq: int | None = None
    reason: str | None = None
    head_hash: str | None = None
    keyed_from: int | None = None  # the first keyed event's seq (None: none is keyed)


class _Broken(Exception):
    """The walk stopped at ``seq`` for ``reason``; ``count`` events verified before it."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


@dataclasses.dataclass
class _Walk:
    """The state of one pass over the chain; each check raises ``_Broken`` on the first break."""

    key: bytes | None
    expected: dict[int, set[str]]
    prev: str = GENESIS_HASH
    count: int = 0
    keyed_from: int | None = None
    last_keyed: bool = False

    def row(self, row: Mapping[str, Any]) -> None:
        seq = int(row["seq"])
        if seq != self.count + 1:
            what = "missing" if seq > self.count + 1 else "duplicate or out of order"
            raise _Broken(self.count + 1, f"seq {self.count + 1} {what}")
        if row["prev_hash"] != self.prev:
            raise _Broken(seq, "prev_hash does not match the previous event's hash")
        if not isinstance(row["detail"], Mapping):  # every event's detail is an object
            raise _Broken(seq, "detail is not a JSON object (edited)")
        stored = str(row["hash"])
        self._hash(seq, {name: row[name] for name in HASHED_KEYS}, stored)
        if seq in self.expected and self.expected[seq] != {stored}:
            raise _Broken(
                seq, f"seq {seq} no longer has the expected hash (the trail was rewritten)"
            )
        self.prev = stored
        self.count += 1

    def _hash(self, seq: int, fields: Mapping[str, Any], stored: str) -> None:
        if self.key is not None and hmac.compare_digest(event_hash(fields, self.key), stored):
            self.keyed_from = seq if self.keyed_from is None else self.keyed_from
            self.last_keyed = True
        elif event_hash(fields) == stored:
            if self.keyed_from is not None:
                raise _Broken(
                    seq,
                    f"not keyed, after keyed events from seq {self.keyed_from} "
                    "(recomputed without the key)",
                )
            self.last_keyed = False
        else:
            reason = "content does not match its hash (edited)"
            if self.key is None:
                reason += ", or it is keyed: set AUDIT_HMAC_KEY to verify a keyed chain"
            raise _Broken(seq, reason)

    def end(self, head: tuple[int, str] | None) -> None:
        count = self.count
        if self.expected and count < max(self.expected):
            raise _Broken(
                count + 1,
                f"the trail ends at seq {count}, before the expected seq "
                f"{max(self.expected)} (events cut)",
            )
        if self.key is not None and count and not self.last_keyed:
            raise _Broken(
                count,
                "the last event is not keyed: the chain was recomputed without the key, or no "
                "event has been written since AUDIT_HMAC_KEY was set",
            )
        if head is not None and (head[0] != count or head[1] != self.prev):
            raise _Broken(*_head_mismatch(head[0], count))


def _head_mismatch(head_seq: int, count: int) -> tuple[int, str]:
    if head_seq > count:
        broken, why = count + 1, "events removed from the end"
    elif head_seq < count:
        broken, why = head_seq + 1, "events beyond the recorded head"
    else:
        broken, why = count, "the last event or the head was replaced"
    return broken, f"the head records seq {head_seq}, the trail ends at seq {count} ({why})"


def verify_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    head: tuple[int, str] | None,
    key: bytes | None = None,
    expect: Iterable[tuple[int, str]] = (),
) -> VerifyResult:
    """Walk stored rows in seq order (as exported: ``at`` text, ``detail`` an object) and re-hash.

    ``head`` is the (seq, hash) the database says is last; None skips that check (an export
    file on its own). ``count`` is the number of events that verified before the first break.
    ``key``: the ``AUDIT_HMAC_KEY``; keyed events need it, and with it the last event must be
    keyed. ``expect``: heads recorded earlier, outside the database (``audit head``, the log);
    the trail must still hold each event with that hash (a rewrite or a cut fails).
    """
    expected: dict[int, set[str]] = {}
    for want_seq, want_hash in expect:
        expected.setdefault(want_seq, set()).add(want_hash)
    walk = _Walk(key=key, expected=expected)
    try:
        for row in rows:
            walk.row(row)
        walk.end(head)
    except _Broken as broken:
        return VerifyResult(False, walk.count, broken.seq, broken.reason)
    return VerifyResult(True, walk.count, head_hash=walk.prev, keyed_from=walk.keyed_from)


HASHED_KEYS = (
    "seq",
    "at",
    "tag",
    "actor",
    "idp",
    "correlation_id",
    "scim_id",
    "genesys_user_id",
    "job_id",
    "outcome",
    "detail",
    "prev_hash",
)
