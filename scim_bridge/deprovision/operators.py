"""What an operator may do to a job (admin API and ``scim-bridge jobs``): approve, retry, look.

No Genesys call here: approving or retrying only makes the job due again; the worker runs it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.jobs import JobRow
from scim_bridge.store.engine import write_transaction


class NotAllowed(ValueError):
    """The job is not in a state that allows this (the admin API answers 409)."""


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


def _get(conn: sa.Connection, job_id: str) -> JobRow:
    try:
        return jobs.get(conn, job_id)
    except KeyError:
        raise LookupError(f"no job {job_id}") from None


def approve(engine: sa.Engine, audit: AuditLog, job_id: str, *, actor: str, now: float) -> JobRow:
    """Release a held job: past the delete breaker, after a conversation timeout, or (after a
    history mismatch) to capture the evidence and try the delete again."""
    with write_transaction(engine) as conn:
        job = _get(conn, job_id)
        if job.state != "held":
            raise NotAllowed(f"job {job_id} is {job.state}, not held")
        job = jobs.admin_update(
            conn,
            job_id,
            {
                "state": "pending",
                "approved_by": actor,
                "due_at": now,
                "waiting_on": None,
                "waiting_since": None,
                "attempts": 0,
                "updated_at": now,
            },
        )
        audit.recorder(conn).record(
            Tag.DEPROVISION_JOB_APPROVED,
            actor=actor,
            genesys_user_id=job.user_id,
            job_id=job.id,
            detail={"step": job.step, "held_for": job.reason},
        )
    return job


def retry(engine: sa.Engine, audit: AuditLog, job_id: str, *, actor: str, now: float) -> JobRow:
    """Run a held, waiting or failed job again now, from its recorded step (not approved:
    a job held by the breaker stays held until someone approves it)."""
    with write_transaction(engine) as conn:
        job = _get(conn, job_id)
        if job.state not in ("held", "waiting", "failed", "pending"):
            raise NotAllowed(
                f"job {job_id} is {job.state}; only held, waiting or failed jobs retry"
            )
        previous = job.reason
        job = jobs.admin_update(
            conn,
            job_id,
            {
                "state": "pending",
                "due_at": now,
                "waiting_on": None,
                "waiting_since": None,
                "reason": None,
                "finished_at": None,
                "attempts": 0,
                "updated_at": now,
            },
        )
        audit.recorder(conn).record(
            Tag.DEPROVISION_JOB_RETRIED,
            actor=actor,
            genesys_user_id=job.user_id,
            job_id=job.id,
            detail={"step": job.step, "previous_reason": previous},
        )
    return job


def describe(job: JobRow) -> dict[str, Any]:
    """A job as the admin API and the ``jobs`` command show it."""
    data = dict(job.data)
    data.pop("history_before_ids", None)
    return {
        "id": job.id,
        "user_id": job.user_id,
        "action": job.action,
        "state": job.state,
        "step": job.step,
        "reason": job.reason,
        "waiting_on": job.waiting_on,
        "attempts": job.attempts,
        "requested_by": job.requested_by,
        "idp": job.idp,
        "scim_id": job.scim_id,
        "dry_run": job.dry_run,
        "from_policy": job.from_policy,
        "approved_by": job.approved_by,
        "claimed_by": job.claimed_by,
        "lease_expires_at": iso(job.lease_expires_at),
        "due_at": iso(job.due_at),
        "access_cut_at": iso(job.access_cut_at),
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "finished_at": iso(job.finished_at),
        "evidence": data.pop("evidence", None),
        "snapshot": data.pop("snapshot", None),
        "data": data,
    }


def details(engine: sa.Engine, audit: AuditLog, job: JobRow) -> dict[str, Any]:
    """``describe`` plus the recorded steps and the job's audit events."""
    shown = describe(job)
    steps = jobs.steps_of(engine, job.id)
    for step in steps:
        step["at"] = iso(step["at"])
    shown["steps"] = steps
    shown["audit_events"] = [e.to_dict() for e in audit.events(job_id=job.id)]
    return shown


def tombstone(engine: sa.Engine, user_id: str) -> dict[str, Any] | None:
    return jobs.tombstone(engine, user_id)
