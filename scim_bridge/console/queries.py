"""What the console's pages read: each an indexed query, paged, so that the pages stay fast with
100,000 jobs (``bench/console.py`` measures them). No Genesys call here."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from scim_bridge.audit import Tag
from scim_bridge.audit.chain import AuditEvent
from scim_bridge.audit.log import stored_event
from scim_bridge.config import DeleteBreaker
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.record import OPEN_STATES, Job
from scim_bridge.store.schema import audit_events, rate_budget_slots, tombstones
from scim_bridge.store.schema import jobs as jobs_table
from scim_bridge.timestamps import iso

PAGE = 50
JOB_ID = re.compile(r"^[0-9a-f]{1,32}$")
BUDGET_MINUTES = 5


@dataclasses.dataclass(frozen=True)
class JobFilter:
    state: str | None = None
    action: str | None = None
    user: str | None = None
    idp: str | None = None
    since: float | None = None  # created at or after (epoch seconds)
    until: float | None = None  # created before


@dataclasses.dataclass(frozen=True)
class JobKey:
    """Where a page of jobs starts or ends: the order's key, ``(created_at, id)``. In a URL as
    ``<created_at>_<id>`` (the float's repr, so it round-trips exactly)."""

    created_at: float
    id: str

    def __str__(self) -> str:
        return f"{self.created_at!r}_{self.id}"

    @classmethod
    def of(cls, job: Job) -> JobKey:
        return cls(job.created_at, job.id)

    @classmethod
    def parse(cls, text: str | None) -> JobKey | None:
        if not text:
            return None
        created, _, job_id = text.partition("_")
        try:
            value = float(created)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not JOB_ID.match(job_id):
            raise ValueError(f"not a position in the job list: {text!r}")
        return cls(value, job_id)


@dataclasses.dataclass(frozen=True)
class JobPage:
    rows: list[Job]
    older: JobKey | None  # the next page down (None: this is the last)
    newer: JobKey | None  # the page above (None: this is the first)


def _job_where(query: sa.Select[Any], where: JobFilter) -> sa.Select[Any]:
    for column, value in (
        (jobs_table.c.state, where.state),
        (jobs_table.c.action, where.action),
        (jobs_table.c.user_id, where.user),
        (jobs_table.c.idp, where.idp),
    ):
        if value:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(jobs_table.c.created_at >= where.since)
    if where.until is not None:
        query = query.where(jobs_table.c.created_at < where.until)
    return query


def job_query(where: JobFilter, *, older: JobKey | None, newer: JobKey | None) -> sa.Select[Any]:
    """The jobs ``where`` matches below ``older`` (newest first), or above ``newer`` (oldest
    first: the page above, read upwards), or from the top. Each filter has an index on (column,
    created_at, id) (store/schema.py ``JOB_LIST_INDEXES``): a range scan, whatever the depth."""
    key = sa.tuple_(jobs_table.c.created_at, jobs_table.c.id)
    query = _job_where(sa.select(jobs_table), where)
    if newer is not None:
        query = query.where(key > sa.tuple_(newer.created_at, newer.id))
        return query.order_by(jobs_table.c.created_at, jobs_table.c.id)
    if older is not None:
        query = query.where(key < sa.tuple_(older.created_at, older.id))
    return query.order_by(jobs_table.c.created_at.desc(), jobs_table.c.id.desc())


def job_page(
    engine: sa.Engine,
    where: JobFilter,
    *,
    older: JobKey | None = None,
    newer: JobKey | None = None,
    size: int = PAGE,
) -> JobPage:
    """A page of jobs, newest first: the first, the one after ``older`` or the one before
    ``newer``; ``size + 1`` rows read, so a deep page costs what the first does (OFFSET would
    read and drop every row above it)."""
    query = job_query(where, older=older, newer=newer).limit(size + 1)
    with engine.connect() as conn:
        rows = [jobs.from_row(r) for r in conn.execute(query).mappings()]
    more = len(rows) > size
    rows = rows[:size]
    if newer is not None:
        rows.reverse()  # read upwards from ``newer``; shown newest first
        return JobPage(
            rows=rows,
            older=JobKey.of(rows[-1]) if rows else newer,
            newer=JobKey.of(rows[0]) if more and rows else None,
        )
    return JobPage(
        rows=rows,
        older=JobKey.of(rows[-1]) if more and rows else None,
        newer=(JobKey.of(rows[0]) if rows else older) if older is not None else None,
    )


def idps(engine: sa.Engine) -> list[str]:
    """The IdP tokens jobs name, by a loose index scan (one index probe per name, not a read of
    every job): ``ix_jobs_idp_created_id``."""
    walk = sa.text(
        "WITH RECURSIVE names(idp) AS ("
        " SELECT MIN(idp) FROM jobs"
        " UNION ALL"
        " SELECT (SELECT MIN(j.idp) FROM jobs j WHERE j.idp > names.idp)"
        " FROM names WHERE names.idp IS NOT NULL)"
        " SELECT idp FROM names WHERE idp IS NOT NULL"
    )
    with engine.connect() as conn:
        return sorted(str(v) for v in conn.execute(walk).scalars())


@dataclasses.dataclass(frozen=True)
class Overview:
    by_state: dict[str, int]
    oldest_open: Job | None
    held: list[Job]
    held_total: int
    breaker: DeleteBreaker | None
    deletes_in_window: int
    budget_per_minute: int
    budget_use: list[tuple[str, int]]  # (minute "HH:MM", slots taken)
    audit_head_seq: int


def overview(
    engine: sa.Engine,
    *,
    now: float,
    breaker: DeleteBreaker | None,
    budget_per_minute: int,
    audit_head_seq: int,
) -> Overview:
    by_state, _ = jobs.counts_by_state(engine)
    with engine.connect() as conn:
        oldest = (
            conn.execute(
                sa.select(jobs_table)
                .where(jobs_table.c.state.in_(OPEN_STATES))
                .order_by(jobs_table.c.created_at)
                .limit(1)
            )
            .mappings()
            .first()
        )
        held = [
            jobs.from_row(r)
            for r in conn.execute(
                sa.select(jobs_table)
                .where(jobs_table.c.state == "held")
                .order_by(jobs_table.c.created_at)
                .limit(20)
            ).mappings()
        ]
        deletes = jobs.deletes_since(conn, now - breaker.window_s) if breaker else 0
        start = now - now % 60 - 60 * (BUDGET_MINUTES - 1)
        minute = sa.func.floor((rate_budget_slots.c.taken_at - start) / 60)
        taken = {
            int(bucket): int(count)
            for bucket, count in conn.execute(
                sa.select(minute, sa.func.count())
                .where(rate_budget_slots.c.taken_at >= start)
                .group_by(minute)
            ).all()
        }
    use = [
        (
            datetime.fromtimestamp(start + 60 * i, UTC).strftime("%H:%M"),
            taken.get(i, 0),
        )
        for i in range(BUDGET_MINUTES)
    ]
    return Overview(
        by_state=by_state,
        oldest_open=jobs.from_row(oldest) if oldest is not None else None,
        held=held,
        held_total=by_state.get("held", 0),
        breaker=breaker,
        deletes_in_window=deletes,
        budget_per_minute=budget_per_minute,
        budget_use=use,
        audit_head_seq=audit_head_seq,
    )


@dataclasses.dataclass(frozen=True)
class Person:
    user_ids: list[str]
    open_jobs: list[Job]
    past_jobs: list[Job]
    tombstones: list[dict[str, Any]]
    # The latest scim:user:rehired event (the tombstone stays).
    rehired: dict[str, Any] | None = None

    @property
    def state(self) -> str:
        """What the bridge last did to the person (it does not ask Genesys here): an open job,
        else the latest of a finished job, a deletion (tombstone) and a re-hire."""
        if self.open_jobs:
            job = self.open_jobs[0]
            return f"{job.action} in progress ({job.state}, step {job.step})"
        last: list[tuple[float, str]] = []
        done = [j for j in self.past_jobs if j.state == "done"]
        if done:
            deleted = "deleted (tombstone kept)" if self.tombstones else "deleted"
            shown = {"deactivate": "deactivated", "reactivate": "active", "delete": deleted}
            last.append((done[0].finished_at or done[0].updated_at, shown[done[0].action]))
        for stone in self.tombstones:
            last.append((_epoch(str(stone["deleted_at"])), "deleted (tombstone kept)"))
        if self.rehired is not None:
            active = bool(self.rehired["detail"].get("active"))
            shown_rehire = "active (re-hired)" if active else "inactive (re-hired)"
            last.append((_epoch(str(self.rehired["at"])), shown_rehire))
        if not last:
            return "no job recorded"
        return max(last, key=lambda pair: pair[0])[1]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def person(engine: sa.Engine, lookup: str, *, limit: int = 100) -> Person:
    """A person by Genesys user id or by email (as a tombstone recorded it, exactly or in lower
    case: both by index). An email finds only deleted users: for the living, use the id."""
    lookup = lookup.strip()
    with engine.connect() as conn:
        stones = [
            dict(r)
            for r in conn.execute(
                sa.select(tombstones).where(
                    tombstones.c.email.in_({lookup, lookup.lower()})
                    if "@" in lookup
                    else tombstones.c.user_id == lookup
                )
            ).mappings()
        ]
        ids = {lookup} if "@" not in lookup else set()
        ids |= {str(s["user_id"]) for s in stones}
        found = [
            jobs.from_row(r)
            for r in conn.execute(
                sa.select(jobs_table)
                .where(jobs_table.c.user_id.in_(sorted(ids)))
                .order_by(jobs_table.c.created_at.desc())
                .limit(limit)
            ).mappings()
        ]
        rehired = (
            conn.execute(
                sa.select(audit_events.c.seq, audit_events.c.at, audit_events.c.detail)
                .where(audit_events.c.tag == Tag.SCIM_USER_REHIRED)
                .where(audit_events.c.scim_id.in_(sorted(ids)))
                .order_by(audit_events.c.seq.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
    for stone in stones:
        stone["detail"] = json.loads(stone.get("detail") or "{}")
    return Person(
        rehired=None
        if rehired is None
        else {**rehired, "detail": json.loads(rehired["detail"] or "{}")},
        user_ids=sorted({j.user_id for j in found} | {str(s["user_id"]) for s in stones}),
        open_jobs=[j for j in found if j.open],
        past_jobs=[j for j in found if not j.open],
        tombstones=stones,
    )


@dataclasses.dataclass(frozen=True)
class AuditFilter:
    tag: str | None = None
    user: str | None = None  # SCIM id or Genesys user id
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _audit_where(query: sa.Select[Any], where: AuditFilter) -> sa.Select[Any]:
    if where.tag:
        query = query.where(audit_events.c.tag == where.tag)
    if where.user:
        query = query.where(
            sa.or_(
                audit_events.c.genesys_user_id == where.user, audit_events.c.scim_id == where.user
            )
        )
    if where.actor:
        query = query.where(audit_events.c.actor == where.actor)
    if where.since is not None:
        query = query.where(audit_events.c.at >= iso(where.since))
    if where.until is not None:
        query = query.where(audit_events.c.at < iso(where.until))
    return query


def audit_page(
    engine: sa.Engine, where: AuditFilter, *, before_seq: int | None = None, size: int = PAGE
) -> tuple[list[AuditEvent], int | None]:
    """Newest first; the next page starts below the returned seq (None: no more)."""
    query = _audit_where(sa.select(audit_events), where)
    if before_seq is not None:
        query = query.where(audit_events.c.seq < before_seq)
    query = query.order_by(audit_events.c.seq.desc()).limit(size + 1)
    with engine.connect() as conn:
        rows = [stored_event(r._asdict()) for r in conn.execute(query)]
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].seq if more and rows else None)


def audit_export(engine: sa.Engine, where: AuditFilter, *, batch: int = 1000) -> Any:
    """Every matching event, oldest first, one JSON object per line (JSON Lines)."""
    after = 0
    while True:
        query = (
            _audit_where(sa.select(audit_events), where)
            .where(audit_events.c.seq > after)
            .order_by(audit_events.c.seq)
            .limit(batch)
        )
        with engine.connect() as conn:
            page = [stored_event(r._asdict()) for r in conn.execute(query)]
        for event in page:
            yield event.to_json() + "\n"
        if len(page) < batch:
            return
        after = page[-1].seq


def job_events(engine: sa.Engine, job_id: str, *, limit: int = 500) -> list[AuditEvent]:
    query = (
        sa.select(audit_events)
        .where(audit_events.c.job_id == job_id)
        .order_by(audit_events.c.seq)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [stored_event(r._asdict()) for r in conn.execute(query)]


def waits_on(job: Job) -> str:
    """The console's "Waits on / reason": what an open job waits for, with the reason it is held
    (``approval: history-mismatch``, so a mismatch does not look like a breaker hold); a finished
    job waits on nothing, so only its reason (``superseded``; older records kept a waiting_on)."""
    if not job.open:
        return job.reason or ""
    if job.waiting_on and job.reason and job.reason != job.waiting_on:
        return f"{job.waiting_on}: {job.reason}"
    return job.waiting_on or job.reason or ""


def shown_time(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def digest_of(value: Mapping[str, Any] | None) -> str:
    return "" if not value else str(value.get("sha256", ""))[:16]
