"""``JobService``: what ``deprovision.api.Deprovisioning`` promises the SCIM layer.

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
from collections.abc import Callable, Mapping

import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.deprovision import jobs, operators
from scim_bridge.deprovision import model as m
from scim_bridge.deprovision.api import (
    Action,
    OpenJob,
    Outcome,
    Refused,
    Requester,
    SnapshotRead,
)
from scim_bridge.deprovision.jobs import Claim
from scim_bridge.deprovision.operators import iso
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.record import Job
from scim_bridge.deprovision.runner import BatchedRead, Runner
from scim_bridge.genesys.api import Gateway
from scim_bridge.genesys.errors import PermissionDenied
from scim_bridge.genesys.types import GenesysUser
from scim_bridge.store.engine import write_transaction

# Failures that can never succeed as asked, told to the IdP as SCIM errors (DESIGN.md).
REFUSED_REASONS = {"not-found", "permission", "invalid", "protected"}


def owner_id(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobService:
    """The service the SCIM routes and operators call (``api.Deprovisioning``): records
    requests, runs them inline up to the sync budget, applies operators' commands."""

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

    def request(
        self,
        action: Action,
        genesys_user_id: str,
        *,
        requester: Requester,
        after_delete: bool = False,
        seen: SnapshotRead | None = None,
    ) -> Outcome:
        job, joined = self.enqueue(
            action, genesys_user_id, requester=requester, after_delete=after_delete
        )
        user: GenesysUser | None = None
        if job.state in ("pending", "waiting", "running"):
            job, user = self._run_inline(job, seen)
        # A delete this request asked for, of a user Genesys holds as deleted already (a DELETE
        # sent again): a 404 (RFC 7644 §3.6), recorded as the refusal it is, not a second delete.
        deleted_before = not joined and job.state == "done" and job.reason == "already-deleted"
        if deleted_before or (
            job.state in ("failed", "cancelled") and job.reason in REFUSED_REASONS
        ):
            reason = "not-found" if deleted_before else job.reason or "invalid"
            refused = Refused(reason, self._refusal_detail(job), job_id=job.id)
            if not joined:
                self._discard_if_no_user(job, requester)
            raise refused
        return dataclasses.replace(self.outcome(job, joined=joined), user=user)

    def _discard_if_no_user(self, job: Job, requester: Requester) -> None:
        """A job this request created for a user Genesys does not have, or holds as deleted
        already, ended at its first read (nothing was written): not kept, so that a token cannot
        fill the job list with made-up ids or repeated deletes, and answers as for a user out of
        its reach (trial-sec B3). Its creation and end stay in the audit trail, with the
        discard."""
        unknown = job.state == "failed" and job.reason == "not-found" and job.step == "snapshot"
        deleted = job.state == "done" and job.reason == "already-deleted"
        if not (unknown or deleted) or job.access_cut_at is not None:
            return
        with write_transaction(self.engine) as conn:
            if jobs.discard(conn, job.id):
                detail = {"action": job.action, "reason": "not-found"}
                self._record(conn, Tag.DEPROVISION_JOB_DISCARDED, job, requester, detail)

    def snapshot_read(self, genesys_user_id: str) -> SnapshotRead:
        deadline = time.monotonic() + self.sync_budget_s
        try:
            footprint, calls = self.runner.calls_of(
                lambda: self.gateway.user_footprint(
                    genesys_user_id, grants=False, deadline=deadline
                )
            )
        except PermissionDenied:
            # An expand's own read the client may not make: the request decides on a plain
            # read, and the job's snapshot reads for itself (and records why it has no footprint).
            user = self.gateway.get_user(genesys_user_id, deadline=deadline)
            return SnapshotRead(user, None, ())
        return SnapshotRead(footprint.user, footprint, calls)

    def open_job(self, genesys_user_id: str) -> OpenJob | None:
        open_jobs = jobs.open_for_user_read(self.engine, genesys_user_id)
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
        after_delete: bool = False,
    ) -> tuple[Job, bool]:
        """The job for this request, created or joined, committed before anything else runs."""
        if not user_id or len(user_id) > 64:
            raise Refused("invalid", "a Genesys user id is required")
        now = self.clock()
        with write_transaction(self.engine) as conn:
            open_jobs = jobs.open_for_user(conn, user_id, lock=True)
            latest = open_jobs[-1] if open_jobs else None
            if latest is not None and not latest.cancel_requested:
                joined = self._join(conn, latest, action, requester=requester, now=now)
                if joined is not None:
                    return joined, True
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
                after_delete=after_delete and action == "reactivate",
            )
            detail = {
                "action": action,
                "dry_run": job.dry_run,
                "from_policy": from_policy,
                "superseded": [j.id for j in open_jobs],
            }
            self._record(conn, Tag.DEPROVISION_JOB_CREATED, job, requester, detail)
        return job, False

    def _join(
        self, conn: sa.Connection, latest: Job, action: Action, *, requester: Requester, now: float
    ) -> Job | None:
        """The user's open job if this request joins it (upgrading it if need be); None if the
        request supersedes it; ``Refused`` for a reactivate of a user being deleted."""
        kind = m.join(latest.action, action)
        if kind == "refuse":
            raise Refused(
                "not-found",
                f"user {latest.user_id} is being deleted (job {latest.id})",
                job_id=latest.id,
            )
        if kind == "supersede":
            return None
        if kind == "upgrade":
            latest = jobs.store(conn, latest, m.command(latest, m.Upgrade(), now=now).job)
        detail = {"requested": action, "job_action": latest.action, "join": kind}
        self._record(conn, Tag.DEPROVISION_JOB_JOINED, latest, requester, detail)
        return latest

    def _record(
        self,
        conn: sa.Connection,
        tag: Tag,
        job: Job,
        requester: Requester,
        detail: Mapping[str, object],
    ) -> None:
        self.audit.recorder(conn).record(
            tag,
            job_id=job.id,
            detail=detail,
            actor=requester.actor,
            idp=requester.idp,
            scim_id=requester.scim_id,
            genesys_user_id=job.user_id,
        )

    def _cancel(self, conn: sa.Connection, job: Job, *, now: float, actor: str) -> None:
        """Supersede ``job``: at once if nobody holds it, else at its holder's next step."""
        leased = job.lease_expires_at is not None and job.lease_expires_at >= now
        transition = m.command(job, m.Cancel(actor, leased=leased), now=now)
        jobs.store(conn, job, transition.job)
        operators.record(self.audit.recorder(conn), job, transition)

    # -- running inline ------------------------------------------------------------------------

    def _run_inline(
        self, job: Job, seen: SnapshotRead | None = None
    ) -> tuple[Job, GenesysUser | None]:
        """The job run here up to the sync budget, and the user as Genesys last answered the run
        (``RunResult.user``). ``seen``: the request's own read of the user, which a
        deactivation's snapshot takes instead of reading again (``SnapshotRead``)."""
        deadline = time.monotonic() + self.sync_budget_s
        claim = jobs.claim_one(
            self.engine, job.id, owner=self.owner, now=self.clock(), lease_s=self.lease_s
        )
        if claim is None:
            # Held by another process, not due yet, or behind the user's older job.
            return jobs.find(self.engine, job.id) or job, None
        # Mass offboarding: when other deletes wait for a history check too (counted when this
        # one reaches its own, not when the request came: an IdP's requests arrive together),
        # leave it to the worker, which checks them all in one analytics job.
        batch = self._worker_available()
        hand_over = self._others_in_flight if batch else None
        reads = _snapshot_reads(claim.job, seen)
        while True:
            result = self.runner.run(
                claim,
                deadline=deadline,
                stop_before_history=batch,
                hand_over=hand_over,
                reads=reads,
            )
            reads = None
            if result.stopped == "needs-history" and not self._others_at_history():
                batch = False  # alone: its own check, inline
                claim = result.claim
                continue
            if result.stopped == "needs-history":
                jobs.release(self.engine, result.claim, now=self.clock())
            current = jobs.find(self.engine, job.id) or result.job
            # An async history job (its id already on the record) that should be done within the
            # request's budget: wait for it here rather than hand the job to the worker.
            again = self._after_history_wait(current, deadline)
            if again is None:
                break
            claim = again
        handed_over = result.stopped in ("needs-history", "budget", "handed-over")
        if (handed_over or current.waiting_on == "history-job") and self._wake_worker is not None:
            self._wake_worker()
        return current, result.user

    def _after_history_wait(self, job: Job, deadline: float) -> Claim | None:
        if job.state != "waiting" or job.waiting_on != "history-job":
            return None
        wait = max(job.due_at - self.clock(), 0.0)
        if time.monotonic() + wait >= deadline:
            return None
        time.sleep(wait)
        return jobs.claim_one(
            self.engine, job.id, owner=self.owner, now=self.clock(), lease_s=self.lease_s
        )

    # -- what the IdP is told -------------------------------------------------------------------

    def outcome(self, job: Job, *, joined: bool = False) -> Outcome:
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
            reason=job.reason,
        )

    @staticmethod
    def _refusal_detail(job: Job) -> str:
        if job.reason == "protected":
            return f"user {job.user_id} is protected (PROTECTED_USERS); nothing was changed"
        if job.reason == "not-found":
            return f"Genesys has no user {job.user_id}"
        if job.reason == "already-deleted":
            return f"user {job.user_id} is deleted"
        if job.reason == "permission":
            return "the Genesys OAuth client lacks a permission this needs (see the job's audit events)"
        return f"Genesys refused the request (job {job.id})"

    # -- operators -------------------------------------------------------------------------------

    def approve(
        self,
        job_id: str,
        *,
        actor: str,
        accept: frozenset[str] = frozenset(),
        reason: str = "",
    ) -> Job:
        job = operators.approve(
            self.engine,
            self.audit,
            job_id,
            actor=actor,
            now=self.clock(),
            accept=accept,
            reason=reason,
        )
        self._wake()
        return job

    def cut_access(self, job_id: str, *, actor: str, reason: str) -> Job:
        job = operators.cut_access(
            self.engine, self.audit, job_id, actor=actor, reason=reason, now=self.clock()
        )
        self._wake()
        return job

    def retry(self, job_id: str, *, actor: str) -> Job:
        job = operators.retry(self.engine, self.audit, job_id, actor=actor, now=self.clock())
        self._wake()
        return job

    def _others_in_flight(self) -> bool:
        """Another delete or deactivation is open besides this one: once this one's access is
        cut, the worker drains its queues (and a delete's history checks) in bulk with them
        (issue 11; a busy IdP push of deactivations, issue 15)."""
        return jobs.open_deprovisions(self.engine) > 1

    def _others_at_history(self) -> bool:
        """Another delete is at (or about to reach) a history check, besides this one."""
        return jobs.waiting_for_history(self.engine) > 1

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


def _snapshot_reads(
    job: Job, seen: SnapshotRead | None
) -> dict[tuple[str, str], BatchedRead] | None:
    """The request's own read as the answer to its deactivation's snapshot (issue 15), when the
    job is at its snapshot and the read is of its user in a state the snapshot takes from it."""
    if (
        seen is None
        or seen.footprint is None
        or job.action != "deactivate"
        or job.step != "snapshot"
        or seen.user.id != job.user_id
        or seen.user.state not in ("active", "inactive")
    ):
        return None
    read = BatchedRead(seen.user, seen.calls, footprint=seen.footprint, grants_read=False)
    return {(job.id, "snapshot"): read}
