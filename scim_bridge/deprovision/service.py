"""``DeprovisioningService``: the engine behind ``deprovision.api.Deprovisioning``.

``request()`` records the job (or joins the user's open one) before any Genesys call, runs it
inline up to the sync budget and reports where it stands. Operators' actions (approve, retry)
live here too, so that the admin API and the ``jobs`` command do the same thing.

A second request for a user with an open job (``model.join``):

- the same action, or a deactivate while a delete is open: joins the open job;
- a delete while a deactivate is open: *upgrades* it: the job becomes a delete and goes on from
  where it is (through the delete guard, if it had passed the guard as a deactivate);
- a reactivate while a delete is open: refused as ``not-found`` (the user is already gone as
  far as SCIM is concerned, DESIGN.md);
- otherwise (reactivate after deactivate, deactivate or delete after reactivate): the latest
  intent wins: the open job is cancelled (at its next step if someone is running it) and a new
  job follows it (a user's jobs run one at a time, oldest first).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.deprovision import jobs, operators
from scim_bridge.deprovision import model as m
from scim_bridge.deprovision.api import Action, OpenJob, Outcome, Refused, Requester
from scim_bridge.deprovision.jobs import JobRow
from scim_bridge.deprovision.operators import iso
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.runner import Runner
from scim_bridge.genesys.api import Gateway
from scim_bridge.store.engine import write_transaction

# Failures that can never succeed as asked, told to the IdP as SCIM errors (DESIGN.md).
REFUSED_REASONS = {"not-found", "permission", "invalid", "protected"}


def owner_id(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DeprovisioningService:
    def __init__(
        self,
        engine: sa.Engine,
        gateway: Gateway,
        audit: AuditLog,
        policies: Policies,
        *,
        sync_budget_s: float = 10.0,
        rules: m.Rules | None = None,
        clock: Callable[[], float] = time.time,
        lease_s: float = 60.0,
        wake_worker: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.gateway = gateway
        self.audit = audit
        self.policies = policies
        self.sync_budget_s = sync_budget_s
        self.clock = clock
        self.lease_s = lease_s
        self.runner = Runner(
            engine, gateway, audit, policies, rules=rules, clock=clock, lease_s=lease_s
        )
        self.owner = owner_id("inline")
        self._wake_worker = wake_worker
        self._lock = threading.Lock()

    def set_wake(self, wake: Callable[[], None]) -> None:
        self._wake_worker = wake

    # -- api.Deprovisioning ------------------------------------------------------------------

    def request(self, action: Action, genesys_user_id: str, *, requester: Requester) -> Outcome:
        job, joined = self.enqueue(action, genesys_user_id, requester=requester)
        if job.state in ("pending", "waiting", "running"):
            job = self._run_inline(job)
        if job.state in ("failed", "cancelled") and job.reason in REFUSED_REASONS:
            raise Refused(job.reason or "invalid", self._refusal_detail(job), job_id=job.id)
        return self.outcome(job, joined=joined)

    def open_job(self, genesys_user_id: str) -> OpenJob | None:
        with self.engine.connect() as conn:
            open_jobs = jobs.open_for_user(conn, genesys_user_id)
        if not open_jobs:
            return None
        # A delete anywhere in the queue hides the user (DESIGN.md: GET -> 404).
        job = next((j for j in open_jobs if j.action == "delete"), open_jobs[-1])
        return OpenJob(
            job_id=job.id,
            action=job.action,
            state=job.state,
            step=job.step,
            created_at=iso(job.created_at) or "",
        )

    # -- recording the request ---------------------------------------------------------------

    def enqueue(
        self,
        action: Action,
        user_id: str,
        *,
        requester: Requester,
        from_policy: bool = False,
    ) -> tuple[JobRow, bool]:
        """The job for this request, created or joined, committed before anything else runs."""
        if not user_id or len(user_id) > 64:
            raise Refused("invalid", "a Genesys user id is required")
        now = self.clock()
        with write_transaction(self.engine) as conn:
            recorder = self.audit.recorder(conn)
            open_jobs = jobs.open_for_user(conn, user_id, lock=True)
            latest = open_jobs[-1] if open_jobs else None
            if latest is not None and not latest.cancel_requested:
                kind = m.join(latest.action, action)
                if kind == "refuse":
                    raise Refused(
                        "not-found",
                        f"user {user_id} is being deleted (job {latest.id})",
                        job_id=latest.id,
                    )
                if kind in ("join", "upgrade"):
                    if kind == "upgrade":
                        latest = jobs.admin_update(
                            conn, latest.id, {"action": "delete", "updated_at": now}
                        )
                    recorder.record(
                        Tag.DEPROVISION_JOB_JOINED,
                        job_id=latest.id,
                        detail={"requested": action, "job_action": latest.action, "join": kind},
                        actor=requester.actor,
                        idp=requester.idp,
                        scim_id=requester.scim_id,
                        genesys_user_id=user_id,
                    )
                    return latest, True
                for other in open_jobs:
                    self._cancel(conn, other, now=now, actor=requester.actor)
            job = jobs.insert(
                conn,
                user_id=user_id,
                action=action,
                requested_by=requester.actor,
                idp=requester.idp,
                scim_id=requester.scim_id,
                from_policy=from_policy,
                dry_run=self.policies.dry_run,
                now=now,
            )
            recorder.record(
                Tag.DEPROVISION_JOB_CREATED,
                job_id=job.id,
                detail={
                    "action": action,
                    "dry_run": job.dry_run,
                    "from_policy": from_policy,
                    "superseded": [j.id for j in open_jobs],
                },
                actor=requester.actor,
                idp=requester.idp,
                scim_id=requester.scim_id,
                genesys_user_id=user_id,
            )
        return job, False

    def _cancel(self, conn: sa.Connection, job: JobRow, *, now: float, actor: str) -> None:
        leased = job.lease_expires_at is not None and job.lease_expires_at >= now
        values: dict[str, object] = {"cancel_requested": True, "updated_at": now}
        if not leased:
            values.update(
                state="cancelled",
                reason="superseded",
                finished_at=now,
                claimed_by=None,
                lease_token=None,
                lease_expires_at=None,
            )
        jobs.admin_update(conn, job.id, values)
        if not leased:
            self.audit.recorder(conn).record(
                Tag.DEPROVISION_JOB_CANCELLED,
                actor=actor,
                outcome="cancelled",
                genesys_user_id=job.user_id,
                job_id=job.id,
                detail={"reason": "superseded", "step": job.step},
            )

    # -- running inline ------------------------------------------------------------------------

    def _run_inline(self, job: JobRow) -> JobRow:
        deadline = time.monotonic() + self.sync_budget_s
        claim = jobs.claim_one(
            self.engine, job.id, owner=self.owner, now=self.clock(), lease_s=self.lease_s
        )
        if claim is None:
            # Held by another process, not due yet, or behind the user's older job.
            return jobs.find(self.engine, job.id) or job
        # Mass offboarding: when other deletes already wait for a history check, leave this one
        # at its own so that the worker checks them all in one analytics query.
        batch = jobs.waiting_for_history(self.engine) > 0 and self._worker_available()
        result = self.runner.run(claim, deadline=deadline, stop_before_history=batch)
        if result.stopped == "needs-history":
            jobs.release(self.engine, result.claim, now=self.clock())
        if result.stopped in ("needs-history", "budget") and self._wake_worker is not None:
            self._wake_worker()
        return jobs.find(self.engine, job.id) or result.job

    # -- what the IdP is told -------------------------------------------------------------------

    def outcome(self, job: JobRow, *, joined: bool = False) -> Outcome:
        access_cut = job.access_cut_at is not None or (
            job.action == "delete" and job.state == "done" and job.reason == "already-deleted"
        )
        waiting_on = job.waiting_on
        if job.state == "pending" and waiting_on is None:
            waiting_on = "worker"
        retry_after = None
        if job.state in ("pending", "waiting", "running"):
            retry_after = max(1.0, job.due_at - self.clock())
        return Outcome(
            job_id=job.id,
            action=job.action,
            state=job.state,
            access_cut=access_cut,
            final=job.state == "done",
            durable=True,
            joined_existing=joined,
            waiting_on=None if job.state in m.FINISHED_STATES else waiting_on,
            retry_after_s=None if access_cut else retry_after,
            already_deleted=job.state == "done" and job.reason == "already-deleted",
        )

    @staticmethod
    def _refusal_detail(job: JobRow) -> str:
        if job.reason == "protected":
            return f"user {job.user_id} is protected (PROTECTED_USERS); nothing was changed"
        if job.reason == "not-found":
            return f"Genesys has no user {job.user_id}"
        if job.reason == "permission":
            return "the Genesys OAuth client lacks a permission this needs (see the job's audit events)"
        return f"Genesys refused the request (job {job.id})"

    # -- operators -------------------------------------------------------------------------------

    def approve(self, job_id: str, *, actor: str) -> JobRow:
        job = operators.approve(self.engine, self.audit, job_id, actor=actor, now=self.clock())
        self._wake()
        return job

    def retry(self, job_id: str, *, actor: str) -> JobRow:
        job = operators.retry(self.engine, self.audit, job_id, actor=actor, now=self.clock())
        self._wake()
        return job

    def _worker_available(self) -> bool:
        """A worker will pick up what this request leaves: the in-process one (it can be woken),
        or a separate ``scim-bridge worker`` that reported within two lease periods."""
        if self._wake_worker is not None:
            return True
        workers = jobs.workers(self.engine)
        return bool(workers) and self.clock() - float(workers[0]["seen_at"]) < 2 * self.lease_s

    def _wake(self) -> None:
        if self._wake_worker is not None:
            self._wake_worker()


def as_dict(outcome: Outcome) -> dict[str, object]:
    return dataclasses.asdict(outcome)
