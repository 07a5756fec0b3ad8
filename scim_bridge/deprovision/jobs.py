"""The ``jobs`` table and its neighbours: rows in, rows out, claims and leases.

Times are seconds since the epoch (floats) in every column here: comparisons and arithmetic
(due, lease expiry, breaker window) stay exact and identical on SQLite and PostgreSQL; the admin
API renders them as ISO 8601.

A job is *claimed* by setting ``claimed_by``, a fresh ``lease_token`` and ``lease_expires_at``.
Every later write by the claimant is fenced on the token (``WHERE lease_token = :token``), so a
process that lost its lease (it stalled past the expiry and someone else resumed the job) can
no longer record anything for it. Claiming takes ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and
``BEGIN IMMEDIATE`` on SQLite (``store.engine.write_transaction``), so two claimants never take
the same job.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scim_bridge.audit.tags import Tag
from scim_bridge.deprovision import evidence
from scim_bridge.deprovision.evidence import Window
from scim_bridge.deprovision.record import (
    OPEN_STATES,
    Acceptance,
    Action,
    Evidence,
    EvidencePart,
    Footprint,
    ForcedCut,
    History,
    Job,
    JobState,
    Memberships,
    PendingJob,
    QueueRef,
    Restoration,
    Snapshot,
    Unremoved,
    footprint_from,
    footprint_to,
)
from scim_bridge.store.engine import is_sqlite, write_transaction
from scim_bridge.store.prepared import Prepared
from scim_bridge.store.schema import (
    audit_events,
    job_steps,
    jobs,
    learned_values,
    tombstones,
    worker_heartbeats,
)

CLAIMABLE: tuple[JobState, ...] = ("pending", "running", "waiting")
# The version of the ``data`` document. 1: as written before the typed record (no ``schema``
# key); 2: the same keys, and ``schema``; 3: access first (issue 10): the steps' order changed
# (deactivate before the breaker and the drain), and the record gained the sessions revoked, a
# forced cut, memberships left unremoved and accepted missing conversations. Loading accepts all
# three; ``_migrate`` moves a row of 1 or 2 onto the new order.
SCHEMA_VERSION = 3

JobRow = Job  # the record, as stored (kept as a name for the store's readers)

_FLAGS = ("from_policy", "dry_run", "cancel_requested", "guarded_for_delete")
_COLUMNS = tuple(
    f.name
    for f in dataclasses.fields(Job)
    if f.name
    not in (
        "snapshot",
        "queues",
        "history",
        "restoration",
        "plan",
        "extra",
        "sessions_revoked_at",
        "forced",
    )
)
_DATA_KEYS = frozenset(
    {
        "schema",
        "snapshot",
        "removed_queues",
        "restore_queues",
        "restored_queues",
        "evidence",
        "history_before_ids",
        "history_before_intervals",
        "restoration",
        "history_before_lake_ids",
        "history_before_lake_window",
        "history_before_tail_window",
        "history_pending",
        "plan",
        "sessions_revoked_at",
        "forced",
        "unremoved_queues",
        "history_missing",
        "history_accepted",
    }
)


# --- the record <-> the row (the only place it is serialised) -----------------------------------


def _queue_to(q: QueueRef) -> dict[str, Any]:
    return {"id": q.id, "name": q.name, "joined": q.joined}


def _queue_from(value: Mapping[str, Any]) -> QueueRef:
    return QueueRef(str(value["id"]), value.get("name"), bool(value.get("joined", True)))


def _queues_from(values: Any) -> tuple[QueueRef, ...] | None:
    return None if values is None else tuple(_queue_from(v) for v in values)


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _at(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _part_from(value: Mapping[str, Any]) -> EvidencePart:
    since, until = _at(value["since"]), _at(value["until"])
    return EvidencePart(
        api=str(value["api"]),
        since=since,
        until=until,
        count=int(value["count"]),
        sha256=str(value["sha256"]),
        calls=int(value.get("calls", 0)),
        users=int(value.get("users", 1)),
        data_availability=_moment(value.get("data_availability")),
        job_id=value.get("job_id"),
    )


def _pending_to(p: PendingJob) -> dict[str, Any]:
    return {
        "job_id": p.job_id,
        "user_ids": list(p.user_ids),
        "since": p.since.isoformat(),
        "until": p.until.isoformat(),
        "submitted_at": p.submitted_at,
        "resubmits": p.resubmits,
        "polls": p.polls,
        "calls": p.calls,
        "lost_reason": p.lost_reason,
    }


def _pending_from(value: Mapping[str, Any] | None) -> PendingJob | None:
    if not value:
        return None
    since, until = _at(value["since"]), _at(value["until"])
    return PendingJob(
        job_id=str(value["job_id"]),
        user_ids=tuple(value.get("user_ids", ())),
        since=since,
        until=until,
        submitted_at=float(value.get("submitted_at", 0.0)),
        resubmits=int(value.get("resubmits", 0)),
        polls=int(value.get("polls", 0)),
        calls=int(value.get("calls", 1)),
        lost_reason=value.get("lost_reason"),
    )


def _window_from(value: Any) -> Window | None:
    return Window.from_dict(value) if isinstance(value, dict) else None


def _evidence_from(value: Mapping[str, Any] | None) -> Evidence | None:
    if not value:
        return None
    missing = value.get("missing_sample")
    return Evidence(
        count=int(value["count"]),
        sha256=str(value["sha256"]),
        sample=tuple(value.get("sample", ())),
        window=Window.from_dict(value["window"]),
        analytics_queries=int(value.get("analytics_queries", 0)),
        users_in_query=int(value.get("users_in_query", 1)),
        missing_count=value.get("missing_count"),
        missing_sample=tuple(missing) if missing is not None else None,
        parts=tuple(_part_from(p) for p in value.get("parts", ())),
    )


def _dump_restoration(r: Restoration) -> dict[str, Any] | None:
    if r == Restoration():
        return None
    return {
        "target": footprint_to(r.target) if r.target is not None else None,
        "source_job_id": r.source_job_id,
        "failed": {part: dict(error) for part, error in r.failed.items()},
        "difference": dict(r.difference) if r.difference is not None else None,
        "after_delete": r.after_delete,
    }


def _load_restoration(value: Mapping[str, Any] | None) -> Restoration:
    if not value:
        return Restoration()
    difference = value.get("difference")
    return Restoration(
        target=footprint_from(value.get("target")),
        source_job_id=value.get("source_job_id"),
        failed={str(k): dict(v) for k, v in (value.get("failed") or {}).items()},
        difference=dict(difference) if difference is not None else None,
        after_delete=bool(value.get("after_delete", False)),
    )


def dump_data(job: Job) -> dict[str, Any]:
    """The ``data`` document for a record: everything the columns do not hold."""
    data: dict[str, Any] = {**job.extra, "schema": SCHEMA_VERSION}
    if job.snapshot is not None:
        snap = job.snapshot
        queues = [_queue_to(q) for q in snap.queues]
        data["snapshot"] = {"user": dict(snap.user), "queues": queues, "at": snap.at}
        if snap.footprint is not None:
            data["snapshot"]["footprint"] = footprint_to(snap.footprint)
        if snap.footprint_error is not None:
            data["snapshot"]["footprint_error"] = snap.footprint_error
        if not snap.queues_read:
            data["snapshot"]["queues_deferred"] = True
    restoration = _dump_restoration(job.restoration)
    if restoration is not None:
        data["restoration"] = restoration
    data.update(_dump_queues(job.queues))
    if job.sessions_revoked_at is not None:
        data["sessions_revoked_at"] = job.sessions_revoked_at
    if job.forced is not None:
        data["forced"] = dataclasses.asdict(job.forced)
    data.update(_dump_history(job.history))
    if job.plan is not None:
        data["plan"] = [dict(p) for p in job.plan]
    return data


def _dump_queues(queues: Memberships) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if queues.removed:
        data["removed_queues"] = [_queue_to(q) for q in queues.removed]
    if queues.to_restore is not None:
        data["restore_queues"] = [_queue_to(q) for q in queues.to_restore]
    if queues.restored is not None:
        data["restored_queues"] = [_queue_to(q) for q in queues.restored]
    if queues.unremoved:
        data["unremoved_queues"] = [
            {**_queue_to(u.queue), "error": dict(u.error)} for u in queues.unremoved
        ]
    return data


def _dump_acceptance(history: History) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if history.missing is not None:
        data["history_missing"] = sorted(history.missing)
    if history.accepted:
        data["history_accepted"] = [
            {"ids": sorted(a.ids), "by": a.by, "reason": a.reason, "at": a.at}
            for a in history.accepted
        ]
    return data


def _dump_history(history: History) -> dict[str, Any]:
    data: dict[str, Any] = {}
    proof = {}
    if history.before is not None:
        proof["before"] = evidence.shown(history.before)
    if history.after is not None:
        proof["after"] = evidence.shown(history.after)
    if proof:
        data["evidence"] = proof
    if history.before_ids is not None:
        data["history_before_ids"] = sorted(history.before_ids)
    if history.before_intervals is not None:
        data["history_before_intervals"] = {
            i: sorted(ids) for i, ids in history.before_intervals.items()
        }
    if history.before_lake_ids is not None:
        data["history_before_lake_ids"] = sorted(history.before_lake_ids)
    if history.before_lake_window is not None:
        data["history_before_lake_window"] = history.before_lake_window.to_dict()
    if history.before_tail_window is not None:
        data["history_before_tail_window"] = history.before_tail_window.to_dict()
    if history.pending is not None:
        data["history_pending"] = _pending_to(history.pending)
    data.update(_dump_acceptance(history))
    return data


def load_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """The record's fields from a ``data`` document of any known version."""
    version = int(data.get("schema", 1))
    if version > SCHEMA_VERSION:
        raise ValueError(f"job data schema {version} is newer than this code ({SCHEMA_VERSION})")
    snap = data.get("snapshot")
    proof = data.get("evidence") or {}
    ids = data.get("history_before_ids")
    intervals = data.get("history_before_intervals")
    lake_ids = data.get("history_before_lake_ids")
    plan = data.get("plan")
    missing = data.get("history_missing")
    forced = data.get("forced")
    return {
        "sessions_revoked_at": data.get("sessions_revoked_at"),
        "forced": ForcedCut(**forced) if forced else None,
        "snapshot": Snapshot(
            dict(snap.get("user", {})),
            _queues_from(snap.get("queues", [])) or (),
            float(snap.get("at", 0.0)),
            footprint=footprint_from(snap.get("footprint")),
            footprint_error=snap.get("footprint_error"),
            queues_read=not snap.get("queues_deferred", False),
        )
        if snap is not None
        else None,
        "restoration": _load_restoration(data.get("restoration")),
        "queues": Memberships(
            removed=_queues_from(data.get("removed_queues", [])) or (),
            to_restore=_queues_from(data.get("restore_queues")),
            restored=_queues_from(data.get("restored_queues")),
            unremoved=tuple(
                Unremoved(_queue_from(u), dict(u.get("error") or {}))
                for u in data.get("unremoved_queues", ())
            ),
        ),
        "history": History(
            before=_evidence_from(proof.get("before")),
            after=_evidence_from(proof.get("after")),
            before_ids=frozenset(ids) if ids is not None else None,
            before_intervals=(
                {str(i): frozenset(v) for i, v in intervals.items()}
                if isinstance(intervals, dict)
                else None
            ),
            before_lake_ids=frozenset(lake_ids) if lake_ids is not None else None,
            before_lake_window=_window_from(data.get("history_before_lake_window")),
            before_tail_window=_window_from(data.get("history_before_tail_window")),
            pending=_pending_from(data.get("history_pending")),
            missing=frozenset(missing) if missing is not None else None,
            accepted=tuple(
                Acceptance(frozenset(a["ids"]), str(a["by"]), str(a["reason"]), float(a["at"]))
                for a in data.get("history_accepted", ())
            ),
        ),
        "plan": tuple(plan) if plan is not None else None,
        "extra": {k: v for k, v in data.items() if k not in _DATA_KEYS},
    }


def from_row(row: sa.RowMapping | Mapping[str, Any]) -> Job:
    """A ``jobs`` row as the record."""
    values = {name: row[name] for name in _COLUMNS}
    for flag in _FLAGS:
        values[flag] = bool(values[flag])
    data = json.loads(row["data"] or "{}")
    job = Job(**values, **load_data(data))
    return _migrate(job) if int(data.get("schema", 1)) < 3 and data else job


def _migrate(job: Job) -> Job:
    """A job recorded under the order before access first (schema 1 and 2: drain and the
    breaker came before the deactivate) onto today's: nothing it did is lost, and a user it had
    not deactivated yet is deactivated next.

    - at ``drain`` with access not cut: the deactivation comes first now (``await_idle``); the
      drain follows it (it finds what was removed gone, and records it all the same);
    - held by the breaker at ``guard``, the user still active: the delete is held *after* the
      deactivation now, so the job runs again from ``guard`` (it deactivates, then the breaker
      step holds it, unless an operator approved it meanwhile).
    """
    if not job.open or job.access_cut:
        return job
    if job.step == "drain":
        return dataclasses.replace(job, step="await_idle")
    if job.step == "guard" and job.state == "held" and job.reason == "breaker":
        return dataclasses.replace(job, state="pending", reason=None, waiting_on=None)
    return job


def to_row(job: Job) -> dict[str, Any]:
    """The record as ``jobs`` columns."""
    values = {name: getattr(job, name) for name in _COLUMNS}
    values["data"] = _dump(dump_data(job))
    return values


@dataclasses.dataclass(frozen=True)
class Claim:
    job: Job
    owner: str
    token: str


class LeaseLost(Exception):
    """The job's lease passed to someone else; stop working on it and record nothing."""


def new_job_id() -> str:
    return uuid.uuid4().hex


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


# --- creating and reading ------------------------------------------------------------------------


def insert(
    conn: sa.Connection,
    *,
    user_id: str,
    action: Action,
    requested_by: str,
    now: float,
    idp: str | None = None,
    scim_id: str | None = None,
    from_policy: bool = False,
    dry_run: bool = False,
    after_delete: bool = False,
) -> JobRow:
    job_id = new_job_id()
    data: dict[str, Any] = {"schema": SCHEMA_VERSION}
    if after_delete:  # a re-hire's reactivation restores what the delete's epoch held
        data["restoration"] = _dump_restoration(Restoration(after_delete=True))
    conn.execute(
        jobs.insert().values(
            id=job_id,
            user_id=user_id,
            action=action,
            state="pending",
            step="snapshot",
            attempts=0,
            due_at=now,
            requested_by=requested_by,
            idp=idp,
            scim_id=scim_id,
            from_policy=from_policy,
            dry_run=dry_run,
            cancel_requested=False,
            guarded_for_delete=False,
            data=_dump(data),
            created_at=now,
            updated_at=now,
        )
    )
    return get(conn, job_id)


def get(conn: sa.Connection, job_id: str) -> JobRow:
    row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise KeyError(job_id)
    return from_row(row)


def stored_action(conn: sa.Connection, job_id: str) -> str:
    """The job's action as stored, the row locked for the rest of the transaction (PostgreSQL;
    SQLite's write transaction holds the database): a holder's save and a request's upgrade
    then cannot interleave between this read and the save."""
    query = sa.select(jobs.c.action).where(jobs.c.id == job_id)
    if not is_sqlite(conn):
        query = query.with_for_update()
    return str(conn.execute(query).scalar_one())


def find(engine: sa.Engine, job_id: str) -> JobRow | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
    return from_row(row) if row else None


def open_for_user(conn: sa.Connection, user_id: str, *, lock: bool = False) -> list[JobRow]:
    query = (
        sa.select(jobs)
        .where(jobs.c.user_id == user_id, jobs.c.state.in_(OPEN_STATES))
        .order_by(jobs.c.created_at, jobs.c.id)
    )
    if lock and not is_sqlite(conn):
        query = query.with_for_update()
    return [from_row(r) for r in conn.execute(query).mappings()]


_OPEN_FOR_USER = Prepared(
    sa.select(jobs)
    .where(
        jobs.c.user_id == sa.bindparam("user_id"), sa.or_(*(jobs.c.state == s for s in OPEN_STATES))
    )
    .order_by(jobs.c.created_at, jobs.c.id)
)


def open_for_user_read(engine: sa.Engine, user_id: str) -> list[JobRow]:
    """``open_for_user`` for a SCIM read's answer, outside a transaction: one statement on the
    driver's connection (``store/prepared.py``; every GET asks it)."""
    return [from_row(m) for m in _OPEN_FOR_USER.rows(engine, user_id=user_id)]


def listing(
    engine: sa.Engine,
    *,
    state: str | None = None,
    user_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[JobRow]:
    query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
    if state:
        query = query.where(jobs.c.state == state)
    if user_id:
        query = query.where(jobs.c.user_id == user_id)
    with engine.connect() as conn:
        return [from_row(r) for r in conn.execute(query.offset(offset)).mappings()]


def steps_of(engine: sa.Engine, job_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(job_steps).where(job_steps.c.job_id == job_id).order_by(job_steps.c.seq)
        ).mappings()
        return [{**dict(r), "detail": json.loads(r["detail"] or "{}")} for r in rows]


# --- claims and leases ---------------------------------------------------------------------------


def _no_older_open_job() -> sa.ColumnElement[bool]:
    """One job at a time per user: a job waits for the user's older open jobs to end."""
    older = jobs.alias("older")
    return ~sa.exists().where(
        older.c.user_id == jobs.c.user_id,
        older.c.state.in_(OPEN_STATES),
        sa.or_(
            older.c.created_at < jobs.c.created_at,
            sa.and_(older.c.created_at == jobs.c.created_at, older.c.id < jobs.c.id),
        ),
    )


def _claimable(now: float) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.state.in_(CLAIMABLE),
        jobs.c.due_at <= now,
        sa.or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
        _no_older_open_job(),
    )


def _take(
    conn: sa.Connection, ids: Sequence[str], owner: str, now: float, lease_s: float
) -> list[Claim]:
    claims = []
    for job_id in ids:
        token = uuid.uuid4().hex
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(
                state="running",
                claimed_by=owner,
                lease_token=token,
                lease_expires_at=now + lease_s,
                updated_at=now,
            )
        )
        claims.append(Claim(get(conn, job_id), owner, token))
    return claims


def claim_due(
    engine: sa.Engine, *, owner: str, now: float, lease_s: float, limit: int
) -> list[Claim]:
    """Claim up to ``limit`` due jobs, oldest due first."""
    with write_transaction(engine) as conn:
        query = sa.select(jobs.c.id).where(_claimable(now)).order_by(jobs.c.due_at).limit(limit)
        if not is_sqlite(conn):
            query = query.with_for_update(skip_locked=True, of=jobs)
        ids = list(conn.execute(query).scalars())
        return _take(conn, ids, owner, now, lease_s)


def claim_one(
    engine: sa.Engine, job_id: str, *, owner: str, now: float, lease_s: float
) -> Claim | None:
    """Claim this job if it is due and nobody holds it (an inline run in a request)."""
    with write_transaction(engine) as conn:
        query = sa.select(jobs.c.id).where(jobs.c.id == job_id, _claimable(now))
        if not is_sqlite(conn):
            query = query.with_for_update(skip_locked=True, of=jobs)
        ids = list(conn.execute(query).scalars())
        claims = _take(conn, ids, owner, now, lease_s)
    return claims[0] if claims else None


def changes(old: Job, new: Job) -> dict[str, Any]:
    """The columns that differ between two versions of a record: a write touches only those, so
    that a command stored meanwhile (a cancel, an upgrade) is not overwritten by a stale copy."""
    before, after = to_row(old), to_row(new)
    return {name: value for name, value in after.items() if before[name] != value}


def save(conn: sa.Connection, claim: Claim, new: Job, *, lease_s: float) -> Job:
    """Store the claimant's new record, fenced on its lease (``LeaseLost`` if no longer its own).

    A job that stops running is handed back (its claim cleared); one still running keeps its
    claim for another ``lease_s``."""
    values = changes(claim.job, new)
    if new.state != "running":
        values.update(claimed_by=None, lease_token=None, lease_expires_at=None)
    else:
        values["lease_expires_at"] = new.updated_at + lease_s
    result = conn.execute(
        jobs.update()
        .where(jobs.c.id == claim.job.id, jobs.c.lease_token == claim.token)
        .values(**values)
    )
    if result.rowcount != 1:
        raise LeaseLost(claim.job.id)
    return get(conn, claim.job.id)


def renew_leases(engine: sa.Engine, *, owner: str, now: float, lease_s: float) -> int:
    """Heartbeat: extend every lease ``owner`` holds."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            jobs.update()
            .where(jobs.c.claimed_by == owner, jobs.c.lease_token.is_not(None))
            .values(lease_expires_at=now + lease_s)
        )
        return int(result.rowcount)


def release(engine: sa.Engine, claim: Claim, *, now: float) -> None:
    """Give a job back unfinished (a request's budget ran out): due now, for the worker."""
    with write_transaction(engine) as conn:
        conn.execute(
            jobs.update()
            .where(jobs.c.id == claim.job.id, jobs.c.lease_token == claim.token)
            .values(
                state=sa.case((jobs.c.state == "running", "pending"), else_=jobs.c.state),
                claimed_by=None,
                lease_token=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )


def discard(conn: sa.Connection, job_id: str) -> bool:
    """Remove a finished job and its steps (``JobService.request``: a user Genesys does not
    have, or holds as deleted already); whether it was there, finished, to remove."""
    finished = jobs.c.state.in_(("failed", "done"))
    result = conn.execute(jobs.delete().where(jobs.c.id == job_id, finished))
    if result.rowcount != 1:
        return False
    conn.execute(job_steps.delete().where(job_steps.c.job_id == job_id))
    return True


def add_step(
    conn: sa.Connection,
    job_id: str,
    *,
    step: str,
    state: str,
    at: float,
    outcome: str,
    detail: Mapping[str, Any],
    actor: str,
) -> None:
    seq = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(job_steps.c.seq), 0)).where(
            job_steps.c.job_id == job_id
        )
    ).scalar_one()
    conn.execute(
        job_steps.insert().values(
            job_id=job_id,
            seq=int(seq) + 1,
            step=step,
            state=state,
            at=at,
            outcome=outcome,
            actor=actor,
            detail=_dump(detail),
        )
    )


# --- policy queries ------------------------------------------------------------------------------


def deletes_since(conn: sa.Connection, since: float) -> int:
    """Deletes that passed the guard since ``since`` (the delete breaker's count)."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(jobs.c.delete_counted_at >= since)
        ).scalar_one()
    )


_Epoch = list[tuple[sa.RowMapping, dict[str, Any]]]


def _since_last_restore(conn: sa.Connection, user_id: str) -> _Epoch:
    """The user's finished jobs (record fields, with id and action) since it last came back: a
    reactivation that finished, or the re-hire that follows a finished delete (a delete ends
    what can be restored: only the jobs up to it, itself included, belong to its epoch)."""
    rows = conn.execute(
        sa.select(jobs.c.id, jobs.c.action, jobs.c.state, jobs.c.data)
        .where(jobs.c.user_id == user_id, jobs.c.state.in_(("done", "cancelled", "failed", "held")))
        .order_by(jobs.c.created_at, jobs.c.id)
    ).mappings()
    epoch: _Epoch = []
    ended = False
    for row in rows:
        if ended or (row["action"] == "reactivate" and row["state"] == "done"):
            epoch = []
            ended = False
        fields = load_data(json.loads(row["data"] or "{}"))
        epoch.append((row, fields))
        ended = row["action"] == "delete" and row["state"] == "done"
    return epoch


def restorable_queues(
    conn: sa.Connection, user_id: str, *, after_delete: bool = False
) -> tuple[QueueRef, ...]:
    """Queue memberships the bridge removed from the user since it last restored them.
    ``after_delete``: for the reactivation that follows a re-hire, the deleted epoch's."""
    removed: dict[str, QueueRef] = {}
    for _row, fields in _epoch(conn, user_id, after_delete=after_delete):
        for queue in fields["queues"].removed:
            removed[queue.id] = queue
    return tuple(removed.values())


def restorable_footprint(
    conn: sa.Connection, user_id: str, *, after_delete: bool = False
) -> tuple[Footprint, str] | None:
    """The footprint before the first change since the user last came back (the earliest
    snapshot with one: a later deactivation's snapshot sees what the first one stripped), and the
    id of the job that took it. ``after_delete`` as for ``restorable_queues``."""
    for row, fields in _epoch(conn, user_id, after_delete=after_delete):
        snap: Snapshot | None = fields["snapshot"]
        if row["action"] != "reactivate" and snap is not None and snap.footprint is not None:
            return snap.footprint, str(row["id"])
    return None


def _epoch(conn: sa.Connection, user_id: str, *, after_delete: bool) -> _Epoch:
    epoch = _since_last_restore(conn, user_id)
    if after_delete:
        return epoch
    last = epoch[-1][0] if epoch else None
    if last is not None and last["action"] == "delete" and last["state"] == "done":
        return []  # the user was deleted since: nothing of before comes back on its own
    return epoch


def users_due_for_delete(engine: sa.Engine, *, deactivated_before: float) -> list[str]:
    """Users the bridge deactivated before then, with no job for them since (DELETE_INACTIVE_AFTER)."""
    later = jobs.alias("later")
    query = (
        sa.select(jobs.c.user_id)
        .where(
            jobs.c.action == "deactivate",
            jobs.c.state == "done",
            jobs.c.dry_run.is_(False),
            jobs.c.access_cut_at.is_not(None),
            jobs.c.finished_at <= deactivated_before,
            ~sa.exists().where(
                later.c.user_id == jobs.c.user_id,
                later.c.id != jobs.c.id,
                later.c.created_at >= jobs.c.created_at,
            ),
        )
        .distinct()
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def counts_by_state(engine: sa.Engine) -> tuple[dict[str, int], float | None]:
    """Jobs by state and the creation time of the oldest open one (metrics, health)."""
    with engine.connect() as conn:
        counts = {
            str(state): int(n)
            for state, n in conn.execute(
                sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
            )
        }
        oldest = conn.execute(
            sa.select(sa.func.min(jobs.c.created_at)).where(jobs.c.state.in_(OPEN_STATES))
        ).scalar_one()
    return counts, (float(oldest) if oldest is not None else None)


def waiting_for_history(engine: sa.Engine) -> int:
    """Open deletes at (or about to reach) a history check: a batch is worth waiting for."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    jobs.c.state.in_(CLAIMABLE),
                    jobs.c.action == "delete",
                    jobs.c.step.in_(("verify_before", "verify_after")),
                )
            ).scalar_one()
        )


def open_deprovisions(engine: sa.Engine) -> int:
    """Delete and deactivate jobs not finished nor held (a mass offboarding in flight)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    jobs.c.state.in_(CLAIMABLE), jobs.c.action.in_(("delete", "deactivate"))
                )
            ).scalar_one()
        )


def next_history_poll(engine: sa.Engine) -> float | None:
    """When the next job waiting on an async details job is due (None: none waits on one)."""
    with engine.connect() as conn:
        due = conn.execute(
            sa.select(sa.func.min(jobs.c.due_at)).where(
                jobs.c.state == "waiting", jobs.c.waiting_on == "history-job"
            )
        ).scalar_one()
    return None if due is None else float(due)


# --- tombstones and heartbeats -------------------------------------------------------------------


def write_tombstone(conn: sa.Connection, values: Mapping[str, Any]) -> None:
    values = dict(values)
    values["detail"] = _dump(values.get("detail") or {})
    existing = conn.execute(
        sa.select(tombstones.c.user_id).where(tombstones.c.user_id == values["user_id"])
    ).first()
    if existing is None:
        conn.execute(tombstones.insert().values(**values))
    else:
        conn.execute(
            tombstones.update().where(tombstones.c.user_id == values["user_id"]).values(**values)
        )


def tombstone(engine: sa.Engine, user_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(tombstones).where(tombstones.c.user_id == user_id))
            .mappings()
            .first()
        )
    if row is None:
        return None
    return {**dict(row), "detail": json.loads(row["detail"] or "{}")}


def heartbeat(
    engine: sa.Engine,
    *,
    worker_id: str,
    now: float,
    started_at: float,
    jobs_finished: int,
    state: str,
) -> None:
    with write_transaction(engine) as conn:
        updated = conn.execute(
            worker_heartbeats.update()
            .where(worker_heartbeats.c.worker_id == worker_id)
            .values(seen_at=now, jobs_finished=jobs_finished, state=state)
        )
        if updated.rowcount == 0:
            conn.execute(
                worker_heartbeats.insert().values(
                    worker_id=worker_id,
                    started_at=started_at,
                    seen_at=now,
                    jobs_finished=jobs_finished,
                    state=state,
                )
            )


def workers(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(worker_heartbeats).order_by(worker_heartbeats.c.seen_at.desc())
            ).mappings()
        ]


def store(conn: sa.Connection, old: Job, new: Job) -> Job:
    """A command's new record (approve, retry, cancel, upgrade), unfenced: only the columns it
    changed are written (a holder's own writes to the others stand)."""
    values = changes(old, new)
    if values:
        conn.execute(jobs.update().where(jobs.c.id == old.id).values(**values))
    return get(conn, old.id)


def duration_buckets(
    engine: sa.Engine, bounds: tuple[float, ...]
) -> dict[tuple[str, str], tuple[tuple[int, ...], float, int]]:
    """Finished jobs' durations (request to end) as cumulative bucket counts, by action and state.

    Computed in the database at scrape time, so every process reports the same histogram.
    """
    duration = jobs.c.finished_at - jobs.c.created_at
    columns = [
        sa.func.sum(sa.case((duration <= bound, 1), else_=0)).label(f"le{i}")
        for i, bound in enumerate(bounds)
    ]
    query = (
        sa.select(
            jobs.c.action,
            jobs.c.state,
            sa.func.count().label("n"),
            sa.func.sum(duration).label("total"),
            *columns,
        )
        .where(jobs.c.finished_at.is_not(None))
        .group_by(jobs.c.action, jobs.c.state)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return {
        (str(r["action"]), str(r["state"])): (
            tuple(int(r[f"le{i}"] or 0) for i in range(len(bounds))),
            float(r["total"] or 0.0),
            int(r["n"]),
        )
        for r in rows
    }


def history_mismatches(engine: sa.Engine) -> int:
    """How many times a history check after a delete failed (audit events, never rewritten)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    audit_events.c.tag == str(Tag.DEPROVISION_HISTORY_MISMATCH)
                )
            ).scalar_one()
        )


# --- what the bridge learns at run time (``learned_values``) -------------------------------------


def learned(engine: sa.Engine, name: str) -> float | None:
    """The value last learned under ``name`` by any process, or None."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(learned_values.c.value).where(learned_values.c.name == name)
        ).scalar_one_or_none()
    return None if value is None else float(value)


def learn(engine: sa.Engine, name: str, value: float, *, now: float) -> None:
    """Keep ``value`` under ``name`` (the latest write wins; a lost race keeps the other's)."""
    try:
        with write_transaction(engine) as conn:
            row = {"value": value, "updated_at": now}
            updated = conn.execute(
                learned_values.update().where(learned_values.c.name == name).values(**row)
            ).rowcount
            if not updated:
                conn.execute(learned_values.insert().values(name=name, **row))
    except sa.exc.IntegrityError:
        pass  # another process inserted it first: its value is as recent as ours
