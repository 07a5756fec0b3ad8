"""``AuditLog``: append to, read and verify the hash-chained trail (docs/audit.md).

One linear chain across every process that writes (gunicorn workers, the worker, replicas on
PostgreSQL): an append's first statement is an UPDATE of the one-row ``audit_head``, which takes
the row lock (PostgreSQL) or the database write lock (SQLite) until the transaction ends, and
returns the previous seq and hash read under that lock. The event row and the new head are
written in the same transaction.

An append may run in its own transaction (``log.record(...)``) or in the caller's
(``log.record(..., conn=conn)`` or ``log.recorder(conn).record(...)``), so that a job row and
the event saying what happened to it commit or roll back together. In the caller's transaction
the head stays locked until the caller commits: keep such transactions short. On SQLite, open
it with ``store.engine.write_transaction`` when it reads before it writes. On PostgreSQL it
must be READ COMMITTED (the default).

Each committed event is also one JSON log line (logger ``scim_bridge.audit``), written after
the commit so that a rolled-back event is never reported.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from scim_bridge import correlation
from scim_bridge.audit.chain import (
    HASHED_KEYS,
    AuditEvent,
    AuditKeyRequired,
    VerifyResult,
    canonical_json,
    event_hash,
    is_plain,
    parse_at,
    verify_rows,
)
from scim_bridge.audit.redact import redact, scrub_string
from scim_bridge.audit.tags import Tag
from scim_bridge.store.engine import write_transaction
from scim_bridge.store.schema import audit_events, audit_head
from scim_bridge.timestamps import iso

LOGGER_NAME = "scim_bridge.audit"
MAX_LIMIT = 10_000

# Events appended in a caller's transaction wait here (on the connection) for its commit.
_PENDING = "scim_bridge.audit.pending"
_SAVEPOINTS = "scim_bridge.audit.savepoints"
_LISTENING = "scim_bridge_audit_listening"


# Built once: constructing a statement costs more than executing it (bench/audit_write.py).
_ADVANCE_HEAD = (
    audit_head.update()
    .where(audit_head.c.id == 1)
    .values(seq=audit_head.c.seq + 1)
    .returning(audit_head.c.seq, audit_head.c.hash)
)
_INSERT_EVENT = audit_events.insert()
_SET_HEAD_HASH = (
    audit_head.update().where(audit_head.c.id == 1).values(hash=sa.bindparam("new_hash"))
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], datetime] = _utcnow,
        logger: logging.Logger | None = None,
        key: bytes | None = None,
    ) -> None:
        """``key``: ``AUDIT_HMAC_KEY`` (``Settings.audit_hmac_key``); every event this log
        appends is then keyed, and ``verify`` needs it."""
        self.engine = engine
        self.key = key
        self._clock = clock
        self._logger = logger or logging.getLogger(LOGGER_NAME)
        self._plain_hash: str | None = None  # an event hash known to be unkeyed (no key only)
        if self._logger.level == logging.NOTSET:
            # Carried whatever LOG_LEVEL says: the log copy is part of the trail's evidence.
            self._logger.setLevel(logging.INFO)
        _listen_for_commits(engine)

    # -- writing ---------------------------------------------------------------------------

    def record(
        self,
        tag: Tag,
        *,
        actor: str,
        outcome: str = "ok",
        idp: str | None = None,
        scim_id: str | None = None,
        genesys_user_id: str | None = None,
        job_id: str | None = None,
        detail: Mapping[str, object] | None = None,
        correlation_id: str | None = None,
        conn: sa.Connection | None = None,
    ) -> AuditEvent:
        """Append one event; with ``conn``, inside that connection's transaction."""
        fields = self._fields(
            tag,
            actor=actor,
            outcome=outcome,
            idp=idp,
            scim_id=scim_id,
            genesys_user_id=genesys_user_id,
            job_id=job_id,
            detail=detail,
            correlation_id=correlation_id,
        )
        if conn is not None:
            event = self._append(conn, fields)
            _pending(conn).append((self._logger, event))
            return event
        with write_transaction(self.engine) as own:
            event = self._append(own, fields)
        _log(self._logger, event)
        return event

    def recorder(self, conn: sa.Connection) -> Recorder:
        """``record`` bound to the caller's connection (and so to its transaction)."""
        return Recorder(self, conn)

    def _fields(
        self,
        tag: Tag,
        *,
        actor: str,
        outcome: str,
        idp: str | None,
        scim_id: str | None,
        genesys_user_id: str | None,
        job_id: str | None,
        detail: Mapping[str, object] | None,
        correlation_id: str | None,
    ) -> dict[str, Any]:
        if not actor:
            raise ValueError("an audit event needs an actor")

        def opt(value: str | None) -> str | None:
            return None if value is None else scrub_string(str(value))

        cleaned = redact(detail)
        return {
            "tag": str(Tag(tag)),
            "actor": scrub_string(actor),
            "idp": opt(idp),
            "correlation_id": opt(correlation_id or correlation.current()),
            "scim_id": opt(scim_id),
            "genesys_user_id": opt(genesys_user_id),
            "job_id": opt(job_id),
            "outcome": scrub_string(outcome),
            "detail": cleaned,
            # Fails here, before any lock, if the detail cannot be canonical JSON.
            "_detail_json": canonical_json(cleaned),
        }

    def _append(self, conn: sa.Connection, fields: dict[str, Any]) -> AuditEvent:
        # The UPDATE comes first: it takes the lock before the previous hash is read.
        seq, prev_hash = conn.execute(_ADVANCE_HEAD).one()
        self._refuse_if_keyed(conn, seq - 1, prev_hash)
        at = self._clock()  # under the lock, so that time order is seq order
        hashed = {
            "seq": seq,
            "at": iso(at),
            **{k: v for k, v in fields.items() if not k.startswith("_")},
            "prev_hash": prev_hash,
        }
        digest = event_hash(hashed, self.key)
        conn.execute(_INSERT_EVENT, {**hashed, "detail": fields["_detail_json"], "hash": digest})
        conn.execute(_SET_HEAD_HASH, {"new_hash": digest})
        if self.key is None:
            self._plain_hash = digest
        return _event({**hashed, "hash": digest})

    def _refuse_if_keyed(self, conn: sa.Connection, head_seq: int, head_hash: str) -> None:
        """Without a key, ``AuditKeyRequired`` when the event at ``head_seq`` is keyed (or
        damaged): an unkeyed event after it would read as a downgrade (chain.py ``is_plain``).
        Skips the read when the head is the last event this log wrote or found plain."""
        if self.key is not None or head_seq < 1 or head_hash == self._plain_hash:
            return
        row = conn.execute(sa.select(audit_events).where(audit_events.c.seq == head_seq)).first()
        if row is None:
            return  # a cut chain: verify reports it, refusing here would not help
        stored = _stored_row(row._asdict())
        if not is_plain({name: stored[name] for name in HASHED_KEYS}, str(stored["hash"])):
            raise AuditKeyRequired(head_seq)
        self._plain_hash = str(stored["hash"])

    def check_can_append(self) -> None:
        """``AuditKeyRequired`` now if this log has no key and the chain is keyed: what a
        command that will write checks first, so that it refuses before doing anything."""
        if self.key is not None:
            return
        with self.engine.connect() as conn:
            seq, digest = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).one()
            self._refuse_if_keyed(conn, int(seq), str(digest))

    # -- reading ---------------------------------------------------------------------------

    def events(
        self,
        *,
        user: str | None = None,
        since: datetime | str | None = None,
        tag: Tag | str | None = None,
        job_id: str | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[AuditEvent]:
        """Events in seq (= time) order; ``user`` matches the SCIM id or the Genesys user id.

        ``since`` is inclusive; page with ``after_seq`` = the last seq of the previous page.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_LIMIT}")
        query = sa.select(audit_events).order_by(audit_events.c.seq).limit(limit)
        if user is not None:
            query = query.where(
                sa.or_(audit_events.c.scim_id == user, audit_events.c.genesys_user_id == user)
            )
        if since is not None:
            moment = since if isinstance(since, datetime) else parse_iso(since)
            query = query.where(audit_events.c.at >= iso(moment))
        if tag is not None:
            query = query.where(audit_events.c.tag == str(tag))
        if job_id is not None:
            query = query.where(audit_events.c.job_id == job_id)
        if after_seq is not None:
            query = query.where(audit_events.c.seq > after_seq)
        with self.engine.connect() as conn:
            return [_event(row._asdict(), detail_json=True) for row in conn.execute(query)]

    def iter_events(
        self,
        *,
        user: str | None = None,
        since: datetime | str | None = None,
        tag: Tag | str | None = None,
        job_id: str | None = None,
        after_seq: int | None = None,
        batch: int = 1000,
    ) -> Iterator[AuditEvent]:
        """Every matching event, fetched a page at a time (for export)."""
        while True:
            page = self.events(
                user=user, since=since, tag=tag, job_id=job_id, limit=batch, after_seq=after_seq
            )
            yield from page
            if len(page) < batch:
                return
            after_seq = page[-1].seq

    def head(self) -> tuple[int, str]:
        """The last event's (seq, hash) as the head row records it."""
        with self.engine.connect() as conn:
            seq, digest = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).one()
        return int(seq), str(digest)

    def head_is_keyed(self) -> bool:
        """Whether the last event was hashed with this log's key (True with no events)."""
        if self.key is None:
            return False
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(audit_events).order_by(audit_events.c.seq.desc()).limit(1)
            ).first()
        if row is None:
            return True
        stored = _stored_row(row._asdict())
        fields = {name: stored[name] for name in HASHED_KEYS}
        return bool(event_hash(fields, self.key) == stored["hash"])

    def ensure_keyed_head(self, *, actor: str) -> None:
        """With a key, make the head keyed now (an ``audit:chain:keyed`` event) if it is not, so
        that a verifier holding the key can insist on a keyed head from the first start on.
        Without one, ``AuditKeyRequired`` if the chain is keyed (a writer's start refuses)."""
        self.check_can_append()
        if self.key is not None and not self.head_is_keyed():
            self.record(Tag.AUDIT_CHAIN_KEYED, actor=actor, detail={"alg": "hmac-sha256"})

    def verify(self, *, batch: int = 1000, expect: Iterable[tuple[int, str]] = ()) -> VerifyResult:
        """Re-hash every event from the first and compare with the stored chain and head.

        The same check as the lines in docs/audit.md, over the database. Reads the head first:
        events appended while this runs are beyond it and are left for the next run. ``expect``
        holds heads recorded earlier (``audit head``): the trail must still contain each.
        """
        head_seq, head_hash = self.head()

        def rows() -> Iterator[dict[str, Any]]:
            after = 0
            with self.engine.connect() as conn:
                while True:
                    page = conn.execute(
                        sa.select(audit_events)
                        .where(audit_events.c.seq > after, audit_events.c.seq <= head_seq)
                        .order_by(audit_events.c.seq)
                        .limit(batch)
                    ).all()
                    for row in page:
                        yield _stored_row(row._asdict())
                    if len(page) < batch:
                        return
                    after = page[-1].seq

        return verify_rows(rows(), head=(head_seq, head_hash), key=self.key, expect=expect)


class Recorder:
    """``AuditLog.record`` bound to a connection: ``log.recorder(conn).record(tag, ...)``."""

    def __init__(self, log: AuditLog, conn: sa.Connection) -> None:
        self._log = log
        self.conn = conn

    def record(
        self,
        tag: Tag,
        *,
        actor: str,
        outcome: str = "ok",
        idp: str | None = None,
        scim_id: str | None = None,
        genesys_user_id: str | None = None,
        job_id: str | None = None,
        detail: Mapping[str, object] | None = None,
        correlation_id: str | None = None,
    ) -> AuditEvent:
        return self._log.record(
            tag,
            actor=actor,
            outcome=outcome,
            idp=idp,
            scim_id=scim_id,
            genesys_user_id=genesys_user_id,
            job_id=job_id,
            detail=detail,
            correlation_id=correlation_id,
            conn=self.conn,
        )


def parse_iso(text: str) -> datetime:
    """ISO 8601 from a person or a query string; a time without zone is read as UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stored_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with ``detail`` parsed; a detail that is not a JSON object (an edited row) stays
    the stored text, so that listings show it and verify names the row (chain.py ``_Walk``)."""
    text = row["detail"]
    try:
        detail = json.loads(text)
    except (TypeError, ValueError):
        detail = None
    return {
        **row,
        "seq": int(row["seq"]),
        "detail": detail if isinstance(detail, dict) else str(text),
    }


def stored_event(row: Mapping[str, Any]) -> AuditEvent:
    """An event from an ``audit_events`` row as stored (``detail`` as JSON text)."""
    return _event(dict(row), detail_json=True)


def _event(values: dict[str, Any], *, detail_json: bool = False) -> AuditEvent:
    if detail_json:
        values = _stored_row(values)
    tag: str = values["tag"]
    with contextlib.suppress(ValueError):  # a tag from a newer version stays a str
        tag = Tag(tag)
    return AuditEvent(
        seq=int(values["seq"]),
        at=parse_at(values["at"]),
        tag=tag,
        actor=values["actor"],
        idp=values["idp"],
        correlation_id=values["correlation_id"],
        scim_id=values["scim_id"],
        genesys_user_id=values["genesys_user_id"],
        job_id=values["job_id"],
        outcome=values["outcome"],
        detail=values["detail"],
        prev_hash=values["prev_hash"],
        hash=values["hash"],
    )


def _log(logger: logging.Logger, event: AuditEvent) -> None:
    logger.info(event.tag, extra={"correlation_id": event.correlation_id, "audit": event.to_dict()})


# -- log lines for events appended in a caller's transaction -------------------------------


def _pending(conn: sa.Connection) -> list[tuple[logging.Logger, AuditEvent]]:
    pending: list[tuple[logging.Logger, AuditEvent]] = conn.info.setdefault(_PENDING, [])
    return pending


def _listen_for_commits(engine: sa.Engine) -> None:
    if getattr(engine, _LISTENING, False):
        return
    sa.event.listen(engine, "commit", _flush_pending)
    sa.event.listen(engine, "rollback", _drop_pending)
    sa.event.listen(engine, "savepoint", _mark_savepoint)
    sa.event.listen(engine, "rollback_savepoint", _rollback_savepoint)
    sa.event.listen(engine, "release_savepoint", _release_savepoint)
    setattr(engine, _LISTENING, True)


def _flush_pending(conn: sa.Connection) -> None:
    # Fires as the commit is issued; a commit that then fails is rare enough to accept a log line
    # for an event that did not persist (verify is the authority, not the log).
    conn.info.pop(_SAVEPOINTS, None)
    for logger, event in conn.info.pop(_PENDING, []):
        _log(logger, event)


def _drop_pending(conn: sa.Connection) -> None:
    conn.info.pop(_PENDING, None)
    conn.info.pop(_SAVEPOINTS, None)


# Savepoints nest strictly, so a stack of "how many events were pending when it began" is enough
# (the event does not carry the savepoint's generated name).
def _mark_savepoint(conn: sa.Connection, _name: str | None) -> None:
    conn.info.setdefault(_SAVEPOINTS, []).append(len(conn.info.get(_PENDING, ())))


def _release_savepoint(conn: sa.Connection, _name: str, _context: object) -> None:
    marks = conn.info.get(_SAVEPOINTS)
    if marks:
        marks.pop()


def _rollback_savepoint(conn: sa.Connection, _name: str, _context: object) -> None:
    marks = conn.info.get(_SAVEPOINTS)
    if marks:
        mark = marks.pop()
        if _PENDING in conn.info:
            del conn.info[_PENDING][mark:]
