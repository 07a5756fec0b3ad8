"""The imperative shell around ``model.decide``: read Genesys, act, record.

For the claimed job's current step the runner reads what the step needs (or takes it from the
same run's previous read, or from the worker's batched history query or batched user read), asks
the model what to do, performs the Genesys effects, and then, in one database transaction fenced on the lease,
writes the job's new step and state, a ``job_steps`` row and the audit events, each carrying the
``inin-correlation-id`` of every Genesys call the step made. If the process dies between the
Genesys call and that commit, the step is simply done again by whoever resumes the job: every
effect is idempotent against Genesys.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.deprovision import evidence, jobs
from scim_bridge.deprovision import model as m
from scim_bridge.deprovision.jobs import Claim, JobRow, LeaseLost
from scim_bridge.deprovision.policies import Policies
from scim_bridge.genesys.api import Gateway
from scim_bridge.genesys.errors import (
    ActiveConversation,
    AuthenticationFailed,
    GenesysError,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    VersionConflict,
)
from scim_bridge.genesys.types import CallRecord, GenesysUser, HistoryQuery, QueueMembership
from scim_bridge.store.engine import is_sqlite, write_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

_BREAKER_LOCK = zlib.crc32(b"scim_bridge.deprovision.breaker")
STEP_DEADLINE_S = 120.0  # one step's Genesys calls, in the worker (leases are renewed meanwhile)
# Steps whose one user read the worker may answer for many jobs with one bulk read.
READ_STEPS: tuple[m.Step, ...] = ("snapshot", "confirm_deleted")


@dataclasses.dataclass(frozen=True)
class HistoryResult:
    """The conversations analytics attributes to one user, from a (possibly shared) query."""

    ids: frozenset[str]
    window: evidence.Window
    queries: int
    batch_users: int
    # interval ("start/end") -> this user's ids found in it (``History.by_interval``)
    by_interval: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class BatchedRead:
    """The worker's bulk read (``get_users``) answering one job's read step.

    ``user`` is None when the bulk read cannot settle the step (the user absent, or not in a state
    the step accepts from it): the step then reads the user itself, as it would alone. ``calls``:
    the bulk read's Genesys calls, listed in the step's audit detail.
    """

    user: GenesysUser | None
    calls: tuple[CallRecord, ...] = ()
    users_in_read: int = 0


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Where a run left the job. ``stopped``: finished (state not running), ``budget``,
    ``needs-history`` / ``needs-read`` (still claimed: the worker batches the query or the user
    read), ``stopping``, ``lease-lost``."""

    job: JobRow
    claim: Claim
    stopped: str


def failure_kind(error: GenesysError) -> m.ErrorKind:
    if isinstance(error, RateLimited):
        return "rate-limit"
    if isinstance(error, Unavailable):
        return "outage"
    if isinstance(error, ActiveConversation):
        return "active-conversation"
    if isinstance(error, VersionConflict):
        return "version-conflict"
    if isinstance(error, AuthenticationFailed):
        return "auth"
    if isinstance(error, NotFound):
        return "not-found"
    if isinstance(error, PermissionDenied):
        return "permission"
    return "invalid"


def view(job: JobRow) -> m.Job:
    """What the model sees of a job row."""
    data = job.data
    before = data.get("history_before_ids")
    return m.Job(
        action=job.action,
        step=job.step,
        attempts=job.attempts,
        dry_run=job.dry_run,
        approved=job.approved_by is not None,
        guarded_for_delete=job.guarded_for_delete,
        access_cut=job.access_cut_at is not None,
        from_policy=job.from_policy,
        cancel_requested=job.cancel_requested,
        waiting_since=job.waiting_since,
        history_before=frozenset(before) if before is not None else None,
        restore_queue_ids=frozenset(q["id"] for q in data.get("restore_queues", [])),
    )


def _queue_dict(q: QueueMembership) -> dict[str, Any]:
    return {"id": q.queue_id, "name": q.queue_name, "joined": q.joined}


def _call_dict(c: CallRecord) -> dict[str, Any]:
    return {
        "method": c.method,
        "endpoint": c.endpoint,
        "status": c.status,
        "correlation_id": c.correlation_id,
        "duration_ms": round(c.duration_s * 1000, 1),
    }


@dataclasses.dataclass
class _StepContext:
    """What one step read and did, for the commit and the audit detail."""

    user: GenesysUser | None = None
    queues: tuple[QueueMembership, ...] | None = None
    history: HistoryResult | None = None
    # The user as await_idle's GET returned it: the deactivate right after PATCHes with its
    # version instead of reading again (a stale one is a 409 and a re-read).
    fresh: GenesysUser | None = None
    read: BatchedRead | None = None
    removed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    restored: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    error: dict[str, Any] | None = None


class Runner:
    def __init__(
        self,
        engine: sa.Engine,
        gateway: Gateway,
        audit: AuditLog,
        policies: Policies,
        *,
        rules: m.Rules | None = None,
        clock: Callable[[], float] = time.time,
        lease_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.gateway = gateway
        self.audit = audit
        self.policies = policies
        self.rules = rules or m.Rules()
        self.clock = clock
        self.lease_s = lease_s
        self._local = threading.local()
        gateway.add_observer(self._on_call)

    # -- Genesys calls seen during a step (the gateway reports them in the calling thread) ------

    def _on_call(self, record: CallRecord) -> None:
        calls: list[CallRecord] | None = getattr(self._local, "calls", None)
        if calls is not None:
            calls.append(record)

    def _collect(self) -> list[CallRecord]:
        calls: list[CallRecord] = []
        self._local.calls = calls
        return calls

    def calls_of(self, fn: Callable[[], T]) -> tuple[T, tuple[CallRecord, ...]]:
        """``fn()`` and the Genesys calls it made in this thread (a worker's shared read)."""
        calls = self._collect()
        try:
            return fn(), tuple(calls)
        finally:
            self._local.calls = None

    # -- the loop ------------------------------------------------------------------------------

    def run(
        self,
        claim: Claim,
        *,
        deadline: float | None = None,
        history: Mapping[tuple[str, str], HistoryResult] | None = None,
        stop_before_history: bool = False,
        reads: Mapping[tuple[str, str], BatchedRead] | None = None,
        stop_before_reads: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> RunResult:
        """Advance the claimed job step by step until it stops running or a limit is hit.

        ``deadline`` (monotonic): a request's sync budget; past it the job is handed back, due
        now, for the worker. ``stop_before_history``: keep the claim and return at a history step
        that ``history`` does not answer (the worker batches those queries).
        ``stop_before_reads``: the same at a ``READ_STEPS`` step ``reads`` has no entry for.
        """
        job = claim.job
        carried = _StepContext()
        while job.state == "running":
            if should_stop():
                jobs.release(self.engine, claim, now=self.clock())
                return RunResult(job, claim, "stopping")
            if deadline is not None and time.monotonic() >= deadline:
                jobs.release(self.engine, claim, now=self.clock())
                return RunResult(job, claim, "budget")
            key = (job.id, job.step)
            answer = (history or {}).get(key)
            if job.step in m.HISTORY_STEPS and answer is None and stop_before_history:
                return RunResult(job, claim, "needs-history")
            read = (reads or {}).get(key) if job.step in READ_STEPS else None
            if job.step in READ_STEPS and read is None and stop_before_reads:
                return RunResult(job, claim, "needs-read")
            carried.read = read
            try:
                job, carried = self._step(claim, job, carried, answer, deadline)
            except LeaseLost:
                log.warning("lease lost", extra={"job_id": job.id, "step": job.step})
                return RunResult(job, claim, "lease-lost")
            claim = dataclasses.replace(claim, job=job)
        return RunResult(job, claim, "stopped")

    def _step(
        self,
        claim: Claim,
        job: JobRow,
        carried: _StepContext,
        answer: HistoryResult | None,
        deadline: float | None,
    ) -> tuple[JobRow, _StepContext]:
        step_deadline = deadline if deadline is not None else time.monotonic() + STEP_DEADLINE_S
        ctx = _StepContext(
            user=carried.user, queues=carried.queues, fresh=carried.fresh, read=carried.read
        )
        calls = self._collect()
        if ctx.read is not None:
            calls.extend(ctx.read.calls)
        try:
            if job.step == "guard":
                # Observed and recorded in one transaction: the breaker's count cannot race.
                with write_transaction(self.engine) as conn:
                    if not is_sqlite(conn):
                        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_BREAKER_LOCK)))
                    seen = self._policy_view(conn, job, ctx)
                    decision = m.decide(view(job), seen, self.rules)
                    new = self._commit(
                        conn, claim=claim, job=job, decision=decision, ctx=ctx, calls=calls
                    )
                return new, _StepContext(user=ctx.user, queues=ctx.queues)
            decision = self._decide_and_act(job, ctx, answer, step_deadline)
        finally:
            self._local.calls = None
        with write_transaction(self.engine) as conn:
            new = self._commit(conn, claim=claim, job=job, decision=decision, ctx=ctx, calls=calls)
        # What this step read stays valid for the next step of the same run (no second read).
        keep = decision.state == "running" and ctx.error is None
        return new, _StepContext(
            user=ctx.user if keep else None,
            queues=ctx.queues if keep and decision.step in ("guard", "drain") else None,
            fresh=ctx.fresh if keep and decision.step == "deactivate" else None,
        )

    def _decide_and_act(
        self, job: JobRow, ctx: _StepContext, answer: HistoryResult | None, deadline: float
    ) -> m.Decision:
        model_job = view(job)
        try:
            seen = self._observe(job, ctx, answer, deadline)
            decision = m.decide(model_job, seen, self.rules)
            for effect in decision.effects:
                self._apply(job, effect, ctx, deadline)
        except GenesysError as error:
            ctx.error = error.describe()
            failure = m.Failure(failure_kind(error), error.retry_after_s, now=self.clock())
            return m.decide(model_job, failure, self.rules)
        return decision

    # -- reading ------------------------------------------------------------------------------------

    def _read_user(
        self, job: JobRow, deadline: float, *, expect_deleted: bool = False
    ) -> GenesysUser | None:
        try:
            return self.gateway.get_user(
                job.user_id,
                include_deleted=True,
                expect_deleted=expect_deleted,
                deadline=deadline,
            )
        except NotFound:
            return None

    def _observe(
        self, job: JobRow, ctx: _StepContext, answer: HistoryResult | None, deadline: float
    ) -> m.Observation:
        step = job.step
        if step == "snapshot":
            shared = ctx.read.user if ctx.read is not None else None
            ctx.user = shared if shared is not None else self._read_user(job, deadline)
            if ctx.user is None:
                return m.UserSeen(None)
            if ctx.user.state != "deleted" and job.action != "reactivate":
                ctx.queues = self.gateway.user_queues(job.user_id, deadline=deadline)
            return m.UserSeen(ctx.user.state, frozenset(q.queue_id for q in ctx.queues or ()))
        if step in ("drain", "restore_queues"):
            if ctx.queues is None:
                ctx.queues = self.gateway.user_queues(job.user_id, deadline=deadline)
            return m.QueuesSeen(frozenset(q.queue_id for q in ctx.queues))
        if step == "await_idle":
            status = self.gateway.conversation_status(job.user_id, deadline=deadline)
            ctx.fresh = status.user
            return m.ConversationsSeen(status.busy, self.clock())
        if step in m.HISTORY_STEPS:
            ctx.history = answer or self._history_alone(job, deadline)
            return m.HistorySeen(ctx.history.ids)
        if step == "confirm_deleted":
            # The job deleted this user: ask ?state=deleted first (one call, not a 404 and two).
            shared = ctx.read.user if ctx.read is not None else None
            ctx.user = (
                shared
                if shared is not None
                else self._read_user(job, deadline, expect_deleted=True)
            )
            return m.UserSeen(ctx.user.state if ctx.user else None)
        return m.Ready()

    def history_window(self, job: JobRow) -> evidence.Window:
        """verify_after compares over the window verify_before used; verify_before opens one."""
        if job.step == "verify_after":
            before = job.data.get("evidence", {}).get("before", {})
            if "window" in before:
                return evidence.Window.from_dict(before["window"])
        return evidence.window(self.clock(), self.policies.history_lookback_days)

    def history_expected(self, job: JobRow) -> Mapping[str, frozenset[str]] | None:
        """For verify_after: what verify_before found, per interval of the same window, so that
        only those intervals are read again and each only until its ids are back (None: read the
        window in full, e.g. evidence recorded before intervals were kept)."""
        if job.step != "verify_after":
            return None
        stored = job.data.get("history_before_intervals")
        if not isinstance(stored, dict):
            return None
        return {str(i): frozenset(ids) for i, ids in stored.items()}

    def _history_alone(self, job: JobRow, deadline: float) -> HistoryResult:
        win = self.history_window(job)
        expected = self.history_expected(job)
        result = self.gateway.conversation_history(
            HistoryQuery(
                user_ids=(job.user_id,),
                since=win.since,
                until=win.until,
                expected=None if expected is None else {job.user_id: expected},
            ),
            deadline=deadline,
        )
        return HistoryResult(
            frozenset(result.conversations.get(job.user_id, frozenset())),
            win,
            result.queries_made,
            1,
            by_interval=result.by_interval.get(job.user_id, {}),
        )

    def _policy_view(self, conn: sa.Connection, job: JobRow, ctx: _StepContext) -> m.PolicyView:
        user = job.data.get("snapshot", {}).get("user", {})
        if ctx.user is not None:
            user = dataclasses.asdict(ctx.user)
        breaker = self.policies.breaker
        count = 0
        if breaker is not None and job.action == "delete":
            count = jobs.deletes_since(conn, self.clock() - breaker.window_s)
        return m.PolicyView(
            protected_by=self.policies.protected_by(
                job.user_id, user.get("email"), user.get("username")
            ),
            user_state=user.get("state"),
            deletes_in_window=count,
            breaker_limit=breaker.limit if breaker else None,
        )

    # -- acting ---------------------------------------------------------------------------------

    def _apply(self, job: JobRow, effect: m.Effect, ctx: _StepContext, deadline: float) -> None:
        uid = job.user_id
        if isinstance(effect, m.RemoveQueues):
            known = {q.queue_id: q for q in ctx.queues or ()}
            for queue_id in sorted(effect.queue_ids):
                self.gateway.remove_queue_member(queue_id, uid, deadline=deadline)
                q = known.get(queue_id)
                ctx.removed.append(
                    _queue_dict(q) if q else {"id": queue_id, "name": None, "joined": True}
                )
        elif isinstance(effect, m.AddQueues):
            wanted = {q["id"]: q for q in job.data.get("restore_queues", [])}
            for queue_id in sorted(effect.queue_ids):
                joined = bool(wanted.get(queue_id, {}).get("joined", True))
                self.gateway.add_queue_member(queue_id, uid, joined=joined, deadline=deadline)
                ctx.restored.append(wanted.get(queue_id, {"id": queue_id}))
        elif isinstance(effect, m.SetState):
            ctx.user = self.gateway.set_state(
                uid, effect.state, current=ctx.fresh, deadline=deadline
            )
        elif isinstance(effect, m.DeleteUser):
            self.gateway.delete_user(uid, deadline=deadline)
        # Everything else is local and happens in the commit.

    # -- recording -------------------------------------------------------------------------------

    def _commit(
        self,
        conn: sa.Connection,
        *,
        claim: Claim,
        job: JobRow,
        decision: m.Decision,
        ctx: _StepContext,
        calls: list[CallRecord],
    ) -> JobRow:
        now = self.clock()
        data = dict(job.data)
        values: dict[str, Any] = {}
        detail: dict[str, Any] = {"step": job.step, "worker": claim.owner}
        if ctx.removed:
            # Recorded even when a later removal failed: reactivation restores exactly these.
            data["removed_queues"] = [*data.get("removed_queues", []), *ctx.removed]
            detail["queues_removed"] = [q["id"] for q in ctx.removed]
        for effect in decision.effects:
            self._record_effect(
                conn,
                job=job,
                effect=effect,
                ctx=ctx,
                data=data,
                values=values,
                detail=detail,
                now=now,
            )
        finished = decision.state in m.FINISHED_STATES
        retry_in = decision.retry_in_s
        due = now
        if decision.state == "waiting" and retry_in is not None:
            due = now + retry_in * random.uniform(1.0, 1.2)  # noqa: S311 (jitter)
        values.update(
            step=decision.step,
            state=decision.state,
            attempts=0 if decision.reset_attempts else job.attempts + 1,
            waiting_on=decision.waiting_on,
            reason=decision.reason,
            due_at=due,
            updated_at=now,
            data=data,
        )
        if decision.state != "running":
            values.update(claimed_by=None, lease_token=None, lease_expires_at=None)
        else:
            values["lease_expires_at"] = now + self.lease_s
        if decision.access_cut and job.access_cut_at is None:
            values["access_cut_at"] = now
        if finished:
            values["finished_at"] = now
        new = jobs.update_fenced(conn, claim, values)
        if ctx.error:
            detail["error"] = ctx.error
        if decision.waiting_on:
            detail["waiting_on"] = decision.waiting_on
        if retry_in is not None:
            detail["retry_in_s"] = round(due - now, 3)
        if decision.reason:
            detail["reason"] = decision.reason
        detail["next_step"] = decision.step
        detail["calls"] = [_call_dict(c) for c in calls]
        outcome = "ok" if decision.state in ("running", "done") else decision.state
        jobs.add_step(
            conn,
            job.id,
            step=job.step,
            state=decision.state,
            at=now,
            outcome=outcome,
            detail=detail,
            actor=claim.owner,
        )
        events = list(decision.events)
        repeated_wait = not events and decision.state == "waiting" and job.attempts > 0
        if not events and not repeated_wait:
            events = [str(Tag.DEPROVISION_JOB_STEP)]
        recorder = self.audit.recorder(conn)
        for tag in events:
            recorder.record(
                Tag(tag),
                actor=job.requested_by,
                outcome=outcome,
                idp=job.idp,
                scim_id=job.scim_id,
                genesys_user_id=job.user_id,
                job_id=job.id,
                detail=detail,
            )
        return new

    def _record_effect(
        self,
        conn: sa.Connection,
        *,
        job: JobRow,
        effect: m.Effect,
        ctx: _StepContext,
        data: dict[str, Any],
        values: dict[str, Any],
        detail: dict[str, Any],
        now: float,
    ) -> None:
        if isinstance(effect, m.RecordSnapshot):
            assert ctx.user is not None
            data["snapshot"] = {
                "user": dataclasses.asdict(ctx.user),
                "queues": [_queue_dict(q) for q in ctx.queues or ()],
                "at": now,
            }
            detail["snapshot"] = {
                "state": ctx.user.state,
                "version": ctx.user.version,
                "queues": [q.queue_id for q in ctx.queues or ()],
            }
            if job.action == "reactivate":
                data["restore_queues"] = jobs.restorable_queues(conn, job.user_id)
                detail["restore_queues"] = [q["id"] for q in data["restore_queues"]]
        elif isinstance(effect, m.RecordPlan):
            data["plan"] = self._plan(job, data)
            detail["plan"] = data["plan"]
        elif isinstance(effect, m.CountDelete):
            values.update(guarded_for_delete=True, delete_counted_at=now)
        elif isinstance(effect, m.AddQueues):
            data["restored_queues"] = ctx.restored
            detail["queues_restored"] = [q["id"] for q in ctx.restored]
        elif isinstance(effect, m.RecordEvidence):
            assert ctx.history is not None
            summary = evidence.summary(
                ctx.history.ids,
                ctx.history.window,
                queries=ctx.history.queries,
                batch_users=ctx.history.batch_users,
            )
            if effect.missing:
                summary["missing_count"] = len(effect.missing)
                summary["missing_sample"] = sorted(effect.missing)[: evidence.SAMPLE_SIZE]
            data.setdefault("evidence", {})
            data["evidence"] = {**data["evidence"], effect.phase: summary}
            if effect.phase == "before":
                data["history_before_ids"] = sorted(ctx.history.ids)
                data["history_before_intervals"] = {
                    interval: sorted(ids) for interval, ids in ctx.history.by_interval.items()
                }
            detail["evidence"] = summary
        elif isinstance(effect, m.StartWaiting):
            values["waiting_since"] = effect.since
        elif isinstance(effect, m.StopWaiting):
            values["waiting_since"] = None
        elif isinstance(effect, m.WriteTombstone):
            self._tombstone(conn, job, data, now, detail)
        elif isinstance(effect, m.SetState):
            detail["state_set"] = effect.state
        elif isinstance(effect, m.DeleteUser):
            detail["delete_sent"] = True

    def _plan(self, job: JobRow, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        snap = data.get("snapshot", {})
        queues = [q["id"] for q in snap.get("queues", [])]
        plan: list[dict[str, Any]] = [
            {"step": "drain", "remove_queues": queues},
            {"step": "await_idle"},
            {"step": "deactivate", "set_state": "inactive"},
        ]
        if job.action == "delete":
            plan += [
                {"step": "verify_before", "lookback_days": self.policies.history_lookback_days},
                {"step": "delete"},
                {"step": "verify_after"},
                {"step": "tombstone"},
            ]
        return plan

    def _tombstone(
        self,
        conn: sa.Connection,
        job: JobRow,
        data: Mapping[str, Any],
        now: float,
        detail: dict[str, Any],
    ) -> None:
        user = data.get("snapshot", {}).get("user", {})
        before = data.get("evidence", {}).get("before", {})
        after = data.get("evidence", {}).get("after", {})
        deleted_at = _iso(now)
        jobs.write_tombstone(
            conn,
            {
                "user_id": job.user_id,
                "name": user.get("name"),
                "email": user.get("email"),
                "department": user.get("department"),
                "title": user.get("title"),
                "deleted_at": deleted_at,
                "job_id": job.id,
                "evidence_sha256": before.get("sha256"),
                "evidence_count": before.get("count"),
                "detail": {"before": before, "after": after, "username": user.get("username")},
            },
        )
        detail["tombstone"] = {
            "user_id": job.user_id,
            "deleted_at": deleted_at,
            "evidence_sha256": before.get("sha256"),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
