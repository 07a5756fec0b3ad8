"""What the console's pages read: each an indexed query, paged, so that the pages stay fast with
100,000 jobs (``bench/console.py`` measures them). No Genesys call here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from scim_bridge.audit.chain import AuditEvent
from scim_bridge.audit.log import stored_event
from scim_bridge.config import DeleteBreaker
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.record import OPEN_STATES, Job
from scim_bridge.store.schema import audit_events, rate_budget_slots, tombstones
from scim_bridge.store.schema import jobs as jobs_table
from scim_bridge.timestamps import iso

PAGE = 50
BUDGET_MINUTES = 5


@dataclasses.dataclass(frozen=True)
class JobFilter:
    state: str | None = None
    action: str | None = None
    user: str | None = None
    idp: str | None = None
    since: float | None = None  # created at or after (epoch seconds)
    until: float | None = None  # created before


def job_page(
    engine: sa.Engine, where: JobFilter, *, page: int = 1, size: int = PAGE
) -> tuple[list[Job], bool]:
    """One page of jobs, newest first, and whether there is a next page. Each filter has an
    index on (column, created_at) (store/schema.py ``CONSOLE_INDEXES``)."""
    query = sa.select(jobs_table).order_by(jobs_table.c.created_at.desc(), jobs_table.c.id)
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
    query = query.limit(size + 1).offset((max(page, 1) - 1) * size)
    with engine.connect() as conn:
        rows = [jobs.from_row(r) for r in conn.execute(query).mappings()]
    return rows[:size], len(rows) > size


def idps(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        query = sa.select(jobs_table.c.idp).where(jobs_table.c.idp.is_not(None)).distinct()
        return sorted(str(v) for v in conn.execute(query).scalars())


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

    @property
    def state(self) -> str:
        """What the bridge last did to the person (it does not ask Genesys here)."""
        if self.open_jobs:
            job = self.open_jobs[0]
            return f"{job.action} in progress ({job.state}, step {job.step})"
        if self.tombstones:
            return "deleted (tombstone kept)"
        done = [j for j in self.past_jobs if j.state == "done"]
        if done:
            return {"deactivate": "deactivated", "reactivate": "active", "delete": "deleted"}[
                done[0].action
            ]
        return "no job recorded"


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
    for stone in stones:
        stone["detail"] = json.loads(stone.get("detail") or "{}")
    return Person(
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


def shown_time(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def digest_of(value: Mapping[str, Any] | None) -> str:
    return "" if not value else str(value.get("sha256", ""))[:16]
