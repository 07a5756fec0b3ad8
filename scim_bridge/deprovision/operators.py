"""What an operator may do to a job (admin API and ``scim-bridge jobs``): approve (accepting
named missing conversations for a held history mismatch), retry, cut access now, look.

No Genesys call here: every command only changes the job's record and makes it due; the worker
runs it (cut access: at its deactivate step, sessions first). The commands themselves are model
transitions (``model.command``); this stores them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from scim_bridge import timestamps
from scim_bridge.audit import AuditLog
from scim_bridge.audit.log import Recorder
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision import model as m
from scim_bridge.deprovision.model import NotAllowed
from scim_bridge.deprovision.record import Job
from scim_bridge.store.engine import write_transaction


def iso(epoch: float | None) -> str | None:
    """A job's time as the admin API shows it: ``timestamps.iso`` in milliseconds, None kept."""
    return None if epoch is None else timestamps.iso(epoch, digits=3)


def _get(conn: sa.Connection, job_id: str) -> Job:
    try:
        return jobs.get(conn, job_id)
    except KeyError:
        raise LookupError(f"no job {job_id}") from None


def apply(
    engine: sa.Engine,
    audit: AuditLog,
    job_id: str,
    cmd: m.Command,
    *,
    now: float,
    reason: str | None = None,
) -> m.Transition:
    """An operator's command (``model.command``): the job's new record and its audit events, in
    one transaction. ``NotAllowed`` if the job's state does not allow it. Genesys effects (cut
    access) are left to the caller. ``reason``: why the operator did it, in the events' detail
    as ``operator_reason`` (the console requires one)."""
    with write_transaction(engine) as conn:
        job = _get(conn, job_id)
        transition = m.command(job, cmd, now=now)
        if reason:
            detail = {**transition.detail, "operator_reason": reason}
            transition = dataclasses.replace(transition, detail=detail)
        stored = jobs.store(conn, job, transition.job)
        record(audit.recorder(conn), job, transition)
    return dataclasses.replace(transition, job=stored)


def record(recorder: Recorder, job: Job, transition: m.Transition) -> None:
    """A command's audit events, under the operator's name (the job's requester otherwise)."""
    for tag in transition.events:
        recorder.record(
            tag,
            actor=transition.actor or job.requested_by,
            outcome=transition.outcome,
            genesys_user_id=job.user_id,
            job_id=job.id,
            detail=transition.detail,
        )


def approve(
    engine: sa.Engine,
    audit: AuditLog,
    job_id: str,
    *,
    actor: str,
    now: float,
    accept: frozenset[str] = frozenset(),
    reason: str = "",
) -> Job:
    """Release a held job: past the delete breaker, after a lost history job, or (a history
    mismatch) by accepting every missing conversation by id (``accept``, with a ``reason``):
    the delete then proceeds against the original evidence less those ids."""
    cmd = m.Approve(actor, accept=frozenset(accept), reason=reason)
    return apply(engine, audit, job_id, cmd, now=now, reason=reason or None).job


def cut_access(
    engine: sa.Engine, audit: AuditLog, job_id: str, *, actor: str, reason: str, now: float
) -> Job:
    """Cut access now (``model.CutAccess``): the job is due at once; its sessions are revoked
    even while Genesys refuses the deactivation for a live conversation, which follows as soon
    as Genesys allows it. ``reason`` is required."""
    return apply(engine, audit, job_id, m.CutAccess(actor, reason), now=now, reason=reason).job


def retry(
    engine: sa.Engine, audit: AuditLog, job_id: str, *, actor: str, now: float, reason: str = ""
) -> Job:
    """Run a held, waiting or failed job again now, from its recorded step (not approved:
    a job held by the breaker stays held until someone approves it)."""
    return apply(engine, audit, job_id, m.Retry(actor), now=now, reason=reason or None).job


def cancel(
    engine: sa.Engine, audit: AuditLog, job_id: str, *, actor: str, now: float, reason: str = ""
) -> Job:
    """Stop an open job: nothing further is done in Genesys. A job a worker holds the lease of
    stops at its next step (the holder records it), as in the console."""
    with engine.connect() as conn:
        job = _get(conn, job_id)
    leased = job.lease_expires_at is not None and job.lease_expires_at >= now
    cmd = m.Cancel(actor, leased=leased, reason="operator")
    return apply(engine, audit, job_id, cmd, now=now, reason=reason or None).job


def describe(job: Job) -> dict[str, Any]:
    """A job as the admin API and the ``jobs`` command show it."""
    data = jobs.dump_data(job)
    for hidden in ("history_before_ids", "history_before_lake_ids", "schema"):
        data.pop(hidden, None)
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
        "sessions_revoked_at": iso(job.sessions_revoked_at),
        "forced": (
            {"by": job.forced.by, "reason": job.forced.reason, "at": iso(job.forced.at)}
            if job.forced is not None
            else None
        ),
        # What the drain could not remove (memberBy=group), shown to operators (issue 10).
        "unremoved_queues": data.get("unremoved_queues", []),
        "missing_conversations": data.get("history_missing"),
        "accepted_missing": data.get("history_accepted", []),
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "finished_at": iso(job.finished_at),
        "evidence": data.pop("evidence", None),
        "snapshot": data.pop("snapshot", None),
        "data": data,
    }


def details(engine: sa.Engine, audit: AuditLog, job: Job) -> dict[str, Any]:
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


__all__ = [
    "NotAllowed",
    "apply",
    "approve",
    "cut_access",
    "describe",
    "details",
    "iso",
    "retry",
    "tombstone",
]
