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
import os
import random
import signal
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from scim_bridge.audit import AuditLog
from scim_bridge.deprovision import evidence, jobs, proof
from scim_bridge.deprovision import model as m
from scim_bridge.deprovision.jobs import Claim, LeaseLost
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.record import EvidencePart, Footprint, Grant, Job, Level, QueueRef
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
from scim_bridge.genesys.types import (
    CallRecord,
    ConversationStatus,
    GenesysUser,
    Proficiency,
    QueueMembership,
    RoleGrant,
)
from scim_bridge.genesys.types import Footprint as GenesysFootprint
from scim_bridge.store.engine import is_sqlite, write_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

_BREAKER_LOCK = zlib.crc32(b"scim_bridge.deprovision.breaker")
KILL_AT_STEP_ENV = "SCIM_BRIDGE_TEST_KILL_AT_STEP"
STEP_DEADLINE_S = 120.0  # one step's Genesys calls, in the worker (leases are renewed meanwhile)
# Steps whose one user read the worker may answer for many jobs with one bulk read.
READ_STEPS: tuple[m.Step, ...] = ("snapshot", "confirm_deleted", "drain")


HistoryResult = proof.Answer  # a history step's answer, from the job alone or a worker's batch


def history_seen(answer: proof.Answer) -> m.Observation:
    """A proof's answer as the model observes it."""
    if isinstance(answer, proof.Waiting):
        return m.HistoryPending(answer.pending, answer.poll_at)
    if isinstance(answer, proof.Lost):
        return m.HistoryLost(answer.pending, answer.reason)
    parts = tuple(
        EvidencePart(
            api=p.api,
            since=p.since,
            until=p.until,
            count=len(p.ids),
            sha256=evidence.digest(p.ids),
            calls=p.calls,
            users=p.users,
            data_availability=p.data_availability,
            job_id=p.job_id,
        )
        for p in answer.parts
    )
    lake = next((p for p in answer.parts if p.api == proof.JOB_API), None)
    tail = next((p for p in answer.parts if p.api == proof.QUERY_API), None)
    return m.HistorySeen(
        answer.ids,
        answer.window,
        sum(p.calls for p in answer.parts),
        max((p.users for p in answer.parts), default=1),
        tail.by_interval if tail is not None else {},
        parts=parts,
        lake_ids=lake.ids if lake is not None else frozenset(),
        lake_window=evidence.Window(lake.since, lake.until) if lake is not None else None,
        tail_window=evidence.Window(tail.since, tail.until) if tail is not None else None,
    )


@dataclasses.dataclass(frozen=True)
class BatchedRead:
    """The worker's bulk read (``get_users``) answering one job's read step.

    ``user`` is None when the bulk read cannot settle the step (the user absent, or not in a state
    the step accepts from it): the step then reads the user itself, as it would alone. ``calls``:
    the bulk read's Genesys calls, listed in the step's audit detail.
    """

    user: GenesysUser | None
    calls: tuple[CallRecord, ...] = ()
    footprint: GenesysFootprint | None = None  # a snapshot's, when the bulk read had it
    # A snapshot's queue memberships, when the round read them for all its users at once
    # (``Gateway.queue_memberships``: through the org's queues when that costs fewer calls).
    queues: tuple[QueueMembership, ...] | None = None
    # A drain's removals, done by the worker for the round's users in bulk (issue 11:
    # ``Gateway.remove_queue_members``), per queue id: None removed, else Genesys's error.
    removals: Mapping[str, GenesysError | None] | None = None
    # False: ``footprint`` came without the grants (a request's ``SnapshotRead``, issue 15);
    # the snapshot reads them.
    grants_read: bool = True


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Where a run left the job. ``stopped``: finished (state not running), ``budget``,
    ``needs-history`` / ``needs-read`` (still claimed: the worker batches the query or the user
    read), ``handed-over`` (access cut; the rest for the worker), ``stopping``, ``lease-lost``."""

    job: Job
    claim: Claim
    stopped: str
    queues: tuple[QueueMembership, ...] | None = None  # read in this run (a drain's, at its stop)
    # The user as Genesys last answered this run, unchanged by the run since (``_Reads.answer``):
    # a request that ran its job inline answers the IdP with it instead of reading again.
    user: GenesysUser | None = None


# The actions whose request hands the rest to the worker once access is cut, when others are in
# flight: both drain queues after the deactivation, and the worker drains a round's in bulk.
HANDED_OVER: tuple[m.Action, ...] = ("delete", "deactivate")


def _defers_queues(job: Job, hand_over: Callable[[], bool]) -> bool:
    """A delete's or deactivation's snapshot, with others in flight: its memberships are left to
    the drain, which the worker runs after the deactivation for all of them in bulk (issue 11).
    The deactivation leaves memberships as they are (it removes the user's roles: "all other
    information about the user remains intact", HELP ?p=245465; the sandbox's reading too)."""
    return job.step == "snapshot" and job.action in HANDED_OVER and not job.dry_run and hand_over()


def _queues_deferred(job: Job) -> bool:
    return job.snapshot is not None and not job.snapshot.queues_read


def _access_just_cut(job: Job) -> bool:
    """A delete or deactivation whose deactivation (and session revocation) is done, at the step
    right after."""
    if job.action not in HANDED_OVER or job.access_cut_at is None:
        return False
    sequence = m.SEQUENCES[job.action]
    return job.step == sequence[sequence.index("deactivate") + 1]


# Genesys errors as the model sees them; the first class that matches wins.
_KINDS: tuple[tuple[type[GenesysError], m.ErrorKind], ...] = (
    (RateLimited, "rate-limit"),
    (Unavailable, "outage"),
    (ActiveConversation, "active-conversation"),
    (VersionConflict, "version-conflict"),
    (AuthenticationFailed, "auth"),
    (NotFound, "not-found"),
    (PermissionDenied, "permission"),
)


def failure_kind(error: GenesysError) -> m.ErrorKind:
    return next((kind for cls, kind in _KINDS if isinstance(error, cls)), "invalid")


def _refs(queues: tuple[QueueMembership, ...] | None) -> tuple[QueueRef, ...]:
    return tuple(QueueRef(q.queue_id, q.queue_name, q.joined) for q in queues or ())


def footprint_record(fp: GenesysFootprint) -> Footprint:
    """The gateway's footprint as the job records it: the user's own grants only (group-granted
    roles stay with the group through deactivation, genesys-api.md 2.4)."""
    return Footprint(
        division_id=fp.division_id,
        grants=tuple(
            Grant(g.role_id, g.division_id, g.role_name, g.division_name) for g in fp.grants
        ),
        skills=tuple(Level(v.id, v.proficiency, v.name) for v in fp.skills),
        languages=tuple(Level(v.id, v.proficiency, v.name) for v in fp.languages),
        group_ids=fp.group_ids,
    )


def _call_dict(c: CallRecord) -> dict[str, Any]:
    return {
        "method": c.method,
        "endpoint": c.endpoint,
        "status": c.status,
        "correlation_id": c.correlation_id,
        "duration_ms": round(c.duration_s * 1000, 1),
    }


@dataclasses.dataclass(frozen=True)
class _Reads:
    """What the run has read of the user, valid for the next step of the same run (no second
    read). ``fresh``: the user as await_idle's GET returned it: the deactivate right after PATCHes
    with its version instead of reading again (a stale one is a 409 and a re-read)."""

    user: GenesysUser | None = None
    queues: tuple[QueueMembership, ...] | None = None
    fresh: GenesysUser | None = None
    read: BatchedRead | None = None
    # The snapshot's read carries the conversation summary (issue 11): await_idle in the same
    # run takes it instead of reading again. A conversation routed meanwhile is still caught:
    # Genesys refuses the deactivation (409, ActiveConversation) and the job waits.
    conversations: ConversationStatus | None = None
    # The DELETE answered: confirm_deleted in the same run needs no read to know it.
    deleted: bool = False
    # A restore's undelete (``m.Undelete``): when Genesys answered it, and the seconds the user
    # was active until the deactivation right after it answered (the audit trail shows them).
    undeleted_at: float | None = None
    active_s: float | None = None
    # The snapshot leaves the memberships to the drain (``_defers_queues``).
    defer_queues: bool = False
    # The user as Genesys last answered in this run (a read of it, or the state PATCH's answer),
    # kept across steps until an effect that may change the user resource (a division move, a
    # grant, skills, languages, a delete) makes it stale; queue memberships and sessions are
    # not the user resource. The request that ran the job answers the IdP with it (issue 15),
    # and verify_restore takes the division from it when nothing moved the user since.
    answer: GenesysUser | None = None


# Steps whose queue listing (the snapshot's) the next steps of the same run reuse for the drain.
_CARRY_QUEUES: tuple[m.Step, ...] = ("guard", "await_idle", "deactivate", "breaker", "drain")
# Effects that may change the user resource (its version): a read or answer from before them is
# stale for the IdP's answer. Queue memberships and sessions are not the user resource.
_CHANGES_USER = (m.MoveDivision, m.GrantRoles, m.AssignSkills, m.AssignLanguages, m.DeleteUser)
# Steps that read the policies in the breaker's transaction.
_POLICY_STEPS: tuple[m.Step, ...] = ("guard", "breaker")


def crash_point() -> Callable[[Job], None] | None:
    """The crash test's hook (``KILL_AT_STEP_ENV``, never set in production): this process kills
    itself with SIGKILL when a job's step has made its Genesys calls and is about to be recorded,
    the moment that leaves the most to redo."""
    step = os.environ.get(KILL_AT_STEP_ENV)
    if not step:
        return None

    def kill(job: Job) -> None:
        if job.step == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return kill


@dataclasses.dataclass(frozen=True)
class AsyncJobRunTime:
    """How long Genesys's async details jobs have been taking (``proof.RunTimeMemory``), kept
    in ``learned_values`` for every process of the bridge."""

    engine: sa.Engine
    clock: Callable[[], float]
    name: str = "history.async_job_run_s"

    def recall(self) -> float | None:
        return jobs.learned(self.engine, self.name)

    def keep(self, seconds: float) -> None:
        jobs.learn(self.engine, self.name, seconds, now=self.clock())


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
        before_commit: Callable[[Job], None] | None = None,
    ) -> None:
        self.engine = engine
        self.gateway = gateway
        self.audit = audit
        self.policies = policies
        self.rules = rules or m.Rules()
        self.clock = clock
        self.lease_s = lease_s
        self._local = threading.local()
        self._before_commit = before_commit or crash_point()
        self.prover = proof.Prover(
            gateway,
            clock=clock,
            poll_s=policies.history_job_poll_s,
            max_resubmits=policies.history_job_resubmits,
            memory=AsyncJobRunTime(engine, clock),
        )
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
        hand_over: Callable[[], bool] | None = None,
    ) -> RunResult:
        """Advance the claimed job step by step until it stops running or a limit is hit.

        ``deadline`` (monotonic): a request's sync budget; past it the job is handed back, due
        now, for the worker. ``stop_before_history``: keep the claim and return at a history step
        that ``history`` does not answer (the worker batches those queries).
        ``stop_before_reads``: the same at a ``READ_STEPS`` step ``reads`` has no entry for.
        ``hand_over``: asked once a delete's or deactivation's access is cut (the step after
        the deactivation); true hands the rest to the worker (``handed-over``, the job due now),
        which does it in bulk with the others in flight (issue 11).
        """
        job = claim.job
        carried = _Reads()
        used: set[tuple[str, str]] = set()  # a shared read serves one step once
        defer = False
        while job.state == "running":
            stop = self._stop_reason(job, deadline, history, stop_before_history, should_stop)
            if stop is None and hand_over is not None:
                defer = _defers_queues(job, hand_over)
                if _access_just_cut(job) and (_queues_deferred(job) or hand_over()):
                    stop = "handed-over"
            if stop is None:
                key = (job.id, job.step)
                read = (
                    (reads or {}).get(key) if job.step in READ_STEPS and key not in used else None
                )
                if read is not None:
                    used.add(key)
                answered = job.step == "confirm_deleted" and carried.deleted
                if job.step in READ_STEPS and read is None and stop_before_reads and not answered:
                    stop = "needs-read"
            if stop is not None:
                if stop in ("stopping", "budget", "handed-over"):
                    jobs.release(self.engine, claim, now=self.clock())
                return RunResult(job, claim, stop, queues=carried.queues, user=carried.answer)
            answer = (history or {}).get((job.id, job.step))
            try:
                job, carried = self._step(
                    claim,
                    dataclasses.replace(carried, read=read, defer_queues=defer),
                    answer,
                    deadline,
                )
            except LeaseLost:
                log.warning("lease lost", extra={"job_id": job.id, "step": job.step})
                return RunResult(job, claim, "lease-lost")
            claim = dataclasses.replace(claim, job=job)
        return RunResult(job, claim, "stopped", user=carried.answer)

    @staticmethod
    def _stop_reason(
        job: Job,
        deadline: float | None,
        history: Mapping[tuple[str, str], HistoryResult] | None,
        stop_before_history: bool,
        should_stop: Callable[[], bool],
    ) -> str | None:
        if should_stop():
            return "stopping"
        if deadline is not None and time.monotonic() >= deadline:
            return "budget"
        answered = (job.id, job.step) in (history or {})
        if job.step in m.HISTORY_STEPS and not answered and stop_before_history:
            return "needs-history"
        return None

    def _step(
        self,
        claim: Claim,
        carried: _Reads,
        answer: HistoryResult | None,
        deadline: float | None,
    ) -> tuple[Job, _Reads]:
        """One step: read, decide, act on Genesys, then record it all in one transaction."""
        job = claim.job
        step_deadline = deadline if deadline is not None else time.monotonic() + STEP_DEADLINE_S
        calls = self._collect()
        if carried.read is not None:
            calls.extend(carried.read.calls)
        try:
            if job.step in _POLICY_STEPS:
                # Observed and recorded in one transaction: the breaker's count cannot race.
                with write_transaction(self.engine) as conn:
                    if not is_sqlite(conn):
                        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_BREAKER_LOCK)))
                    seen = self._policy_view(conn, job, carried)
                    new = self._commit(conn, claim, self._decide(job, seen), calls)
                return new, _Reads(
                    user=carried.user,
                    queues=carried.queues,
                    conversations=carried.conversations,
                    answer=carried.answer,
                )
            transition, reads = self._decide_and_act(job, carried, answer, step_deadline)
        finally:
            self._local.calls = None
        with write_transaction(self.engine) as conn:
            new = self._commit(conn, claim, transition, calls)
        # What this step read stays valid for the next step of the same run (no second read).
        keep = new.state == "running" and "error" not in transition.detail
        return new, _Reads(
            user=reads.user if keep else None,
            queues=reads.queues
            if keep and new.step in (*_CARRY_QUEUES, "verify_restore")
            else None,
            fresh=reads.fresh if keep and new.step == "deactivate" else None,
            conversations=(
                reads.conversations
                if keep and new.step in ("guard", "drain", "await_idle")
                else None
            ),
            deleted=reads.deleted and keep and new.step == "confirm_deleted",
            # Current through the effects that succeeded; after a failed call (a lost answer may
            # hide a change Genesys made) the request reads the user instead.
            answer=reads.answer if "error" not in transition.detail else None,
        )

    def _decide(self, job: Job, seen: m.Observation) -> m.Transition:
        jitter = random.uniform(1.0, 1.2)  # noqa: S311 (jitter, not a secret)
        return m.decide(job, seen, self.rules, now=self.clock(), jitter=jitter)

    def _decide_and_act(
        self, job: Job, reads: _Reads, answer: HistoryResult | None, deadline: float
    ) -> tuple[m.Transition, _Reads]:
        done: list[m.Effect] = []
        refused: list[tuple[QueueRef, Mapping[str, Any]]] = []
        try:
            seen, reads = self._observe(job, reads, answer, deadline)
            transition = self._decide(job, seen)
            for effect in transition.effects:
                try:
                    reads = self._apply(job, effect, reads, deadline)
                except GenesysError as error:
                    if not isinstance(effect, m.RemoveQueue) or error.transient:
                        raise
                    # Refused for good (memberBy=group: 400): the other removals go on.
                    refused.append((effect.queue, error.describe()))
                    continue
                done.append(effect)
        except GenesysError as error:
            failure = m.Failure(
                failure_kind(error),
                error.retry_after_s,
                applied=tuple(done),
                error=error.describe(),
            )
            return self._decide(job, failure), reads
        if refused:
            first = refused[0][1]
            failure = m.Failure("invalid", applied=tuple(done), error=first, refused=tuple(refused))
            return self._decide(job, failure), reads
        if reads.active_s is not None:
            detail = {**transition.detail, "active_s": round(reads.active_s, 3)}
            transition = dataclasses.replace(transition, detail=detail)
        return transition, reads

    # -- reading ------------------------------------------------------------------------------------

    def _read_user(
        self, job: Job, deadline: float, *, expect_deleted: bool = False
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
        self, job: Job, reads: _Reads, answer: HistoryResult | None, deadline: float
    ) -> tuple[m.Observation, _Reads]:
        step = job.step
        if step in ("snapshot", "confirm_deleted"):
            return self._observe_user(job, reads, deadline)
        if step in ("drain", "restore_queues"):
            return self._observe_queues(job, reads, deadline)
        if step in ("await_idle", "confirm_restored"):
            return self._observe_state(job, reads, deadline)
        if step == "verify_restore":
            return self._observe_restore(job, reads, deadline)
        if step in m.HISTORY_STEPS:
            found = answer if answer is not None else self._history_alone(job, deadline)
            return history_seen(found), reads
        return m.Ready(), reads

    def _observe_queues(
        self, job: Job, reads: _Reads, deadline: float
    ) -> tuple[m.Observation, _Reads]:
        """drain and restore_queues: the user's queue memberships (the run's listing, or the
        worker's); none read for a restore when the bridge removed none (issue 15)."""
        if job.step == "restore_queues" and not job.queues.to_restore:
            return m.Ready(), reads
        queues = reads.queues
        if queues is None and reads.read is not None:
            queues = reads.read.queues  # the worker's, for its bulk removal
        if queues is None:
            queues = self.gateway.user_queues(job.user_id, deadline=deadline)
        held = m.QueuesSeen(frozenset(q.queue_id for q in queues), _refs(queues))
        return held, dataclasses.replace(reads, queues=queues)

    def _observe_restore(
        self, job: Job, reads: _Reads, deadline: float
    ) -> tuple[m.Observation, _Reads]:
        """verify_restore: what the reactivation restored, read back, and nothing else (issue 15):
        an empty part of the target cannot differ (``m.restore_checks``). The division from the
        run's last answer when nothing changed the user since (the activate's PATCH answers it);
        a user read, with the skills and languages expanded when those were restored, otherwise;
        the grants only when roles were restored; the queues only when the bridge removed some
        (restore_queues' listing when it re-added none)."""
        checks = m.restore_checks(job)
        uid = job.user_id
        user = reads.answer
        found: GenesysFootprint | None = None
        if checks & {"skills", "languages"}:
            found = self.gateway.user_footprint(uid, grants="roles" in checks, deadline=deadline)
            user = found.user
        elif user is None and "division" in checks:
            user = self.gateway.get_user(uid, deadline=deadline)
        grants: tuple[RoleGrant, ...] = found.grants if found is not None else ()
        if "roles" in checks and found is None:
            every = self.gateway.role_grants(uid, deadline=deadline)
            grants = tuple(g for g in every if g.subject_id == uid)
        queues = reads.queues
        if "queues" in checks and queues is None:
            queues = self.gateway.user_queues(uid, deadline=deadline)
        now = Footprint(
            division_id=user.division_id if user is not None else None,
            grants=tuple(
                Grant(g.role_id, g.division_id, g.role_name, g.division_name) for g in grants
            ),
            skills=tuple(Level(v.id, v.proficiency, v.name) for v in found.skills)
            if found is not None
            else (),
            languages=tuple(Level(v.id, v.proficiency, v.name) for v in found.languages)
            if found is not None
            else (),
        )
        seen = m.FootprintSeen(now, _refs(queues), checked=checks)
        return seen, dataclasses.replace(reads, answer=user, queues=queues)

    def _observe_state(
        self, job: Job, reads: _Reads, deadline: float
    ) -> tuple[m.Observation, _Reads]:
        """await_idle: the live conversations (with the user, whose version the deactivate
        uses); confirm_restored: the state a restore left, read back."""
        if job.step == "confirm_restored":
            user = self._read_user(job, deadline)
            return m.UserSeen(user.state if user else None), dataclasses.replace(reads, answer=user)
        if job.forced is not None:
            return m.Ready(), reads  # cut access now: nothing to wait for
        status = reads.conversations  # the snapshot's read, in the same run (issue 11)
        if status is None:
            status = self.gateway.conversation_status(job.user_id, deadline=deadline)
        seen = m.ConversationsSeen(status.busy)
        return seen, dataclasses.replace(
            reads, fresh=status.user, conversations=None, answer=status.user
        )

    def _observe_user(
        self, job: Job, reads: _Reads, deadline: float
    ) -> tuple[m.Observation, _Reads]:
        """snapshot and confirm_deleted: the user (from the worker's bulk read when it settles
        the step). confirm_deleted asks ?state=deleted first (one call, not a 404 and two)."""
        confirm = job.step == "confirm_deleted"
        if confirm and reads.deleted:
            return m.UserSeen("deleted"), reads  # the DELETE's answer (no re-read)
        user, footprint, footprint_error = self._user_read(job, reads, deadline)
        reads = dataclasses.replace(
            reads,
            user=user,
            conversations=footprint.conversations if footprint else None,
            answer=user if user is not None and user.state != "deleted" else None,
        )
        if user is None or confirm:
            return m.UserSeen(user.state if user else None), reads
        queues = reads.queues
        live = user.state != "deleted"
        # The worker's bulk read carries the round's memberships; a request's own read does
        # not, and leaves them to the drain like a request that read nothing ahead.
        deferred = live and reads.defer_queues and (reads.read is None or reads.read.queues is None)
        if live and job.action != "reactivate" and not deferred:
            shared = reads.read.queues if reads.read is not None else None
            queues = shared if shared is not None else self._user_queues(job, deadline)
        if live and job.action != "reactivate" and footprint is None and footprint_error is None:
            footprint, footprint_error = self._footprint_alone(job, deadline)
        restorable: tuple[QueueRef, ...] = ()
        first: tuple[Footprint, str] | None = None
        if live:
            after_delete = job.restoration.after_delete
            with self.engine.connect() as conn:
                if job.action == "reactivate":
                    restorable = jobs.restorable_queues(
                        conn, job.user_id, after_delete=after_delete
                    )
                first = jobs.restorable_footprint(conn, job.user_id, after_delete=after_delete)
        seen = m.UserSeen(
            user.state,
            frozenset(q.queue_id for q in queues or ()),
            user=dataclasses.asdict(user),
            queues=_refs(queues),
            restorable=restorable,
            footprint=footprint_record(footprint) if footprint is not None else None,
            footprint_error=footprint_error,
            restorable_footprint=first,
            queues_deferred=deferred,
        )
        return seen, dataclasses.replace(reads, queues=None if deferred else queues)

    def _user_read(
        self, job: Job, reads: _Reads, deadline: float
    ) -> tuple[GenesysUser | None, GenesysFootprint | None, str | None]:
        """The user, from the worker's bulk read or one of its own: for a deactivate's or
        delete's snapshot the read with the footprint's expands (issue 12), which serves both; a
        client that may not read grants still deprovisions (``footprint_error``)."""
        confirm = job.step == "confirm_deleted"
        user = reads.read.user if reads.read is not None else None
        footprint: GenesysFootprint | None = reads.read.footprint if reads.read else None
        footprint_error: str | None = None
        if footprint is not None and reads.read is not None and not reads.read.grants_read:
            try:
                footprint = footprint.with_grants(
                    self.gateway.role_grants(job.user_id, deadline=deadline)
                )
            except NotFound:
                footprint = None  # read again below, as the snapshot does alone
            except PermissionDenied as e:
                footprint, footprint_error = None, e.message
        if user is None and not confirm and job.action != "reactivate":
            try:
                footprint = self.gateway.user_footprint(job.user_id, deadline=deadline)
                user = footprint.user
            except NotFound:
                footprint = None
            except PermissionDenied as e:
                footprint, footprint_error = None, e.message
        if user is None:
            user = self._read_user(job, deadline, expect_deleted=confirm)
        return user, footprint, footprint_error

    def _user_queues(self, job: Job, deadline: float) -> tuple[QueueMembership, ...]:
        return self.gateway.user_queues(job.user_id, deadline=deadline)

    def _footprint_alone(
        self, job: Job, deadline: float
    ) -> tuple[GenesysFootprint | None, str | None]:
        try:
            return self.gateway.user_footprint(job.user_id, deadline=deadline), None
        except PermissionDenied as e:
            return None, e.message
        except NotFound:
            return None, "not-found"

    def history_window(self, job: Job) -> evidence.Window:
        """verify_after compares over the window verify_before used; verify_before opens one,
        from ``HISTORY_SINCE`` to now."""
        before = job.history.before
        if job.step == "verify_after" and before is not None:
            return before.window
        return evidence.window_from(self.clock(), self.policies.history_since.start)

    def history_request(self, job: Job) -> proof.Request:
        """The job's check as the prover takes it: its pending async job, and for verify_after
        what verify_before found, part by part (None for evidence from before the proof had
        parts: the whole window is read again)."""
        history = job.history
        before = None
        if (
            job.step == "verify_after"
            and history.before_lake_window is not None
            and history.before_tail_window is not None
        ):
            before = proof.Before(
                job_ids=history.before_lake_ids or frozenset(),
                job_window=history.before_lake_window,
                tail_window=history.before_tail_window,
                tail_intervals=history.before_intervals or {},
            )
        return proof.Request(
            key=(job.id, job.step),
            user_id=job.user_id,
            window=self.history_window(job),
            pending=history.pending,
            before=before,
        )

    def _history_alone(self, job: Job, deadline: float) -> HistoryResult:
        request = self.history_request(job)
        return self.prover.run([request], deadline=deadline, strict=True)[request.key]

    def _policy_view(self, conn: sa.Connection, job: Job, reads: _Reads) -> m.PolicyView:
        user: Mapping[str, Any] = job.snapshot.user if job.snapshot else {}
        if reads.user is not None:
            user = dataclasses.asdict(reads.user)
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
            history_since=str(self.policies.history_since),
        )

    # -- acting ---------------------------------------------------------------------------------

    def _apply(self, job: Job, effect: m.Effect, reads: _Reads, deadline: float) -> _Reads:
        """One Genesys effect (local ones run in the commit); the reads it makes stale updated."""
        uid = job.user_id
        if isinstance(effect, _CHANGES_USER):
            reads = dataclasses.replace(reads, answer=None)  # stale from before the call
        if isinstance(effect, m.RemoveQueue | m.AddQueue | m.JoinQueues):
            return self._apply_queue(uid, effect, reads, deadline)
        if isinstance(effect, m.SetState | m.Undelete):
            return self._apply_state(uid, effect, reads, deadline)
        if isinstance(effect, m.RevokeSessions):
            self.gateway.revoke_sessions(uid, deadline=deadline)
        elif isinstance(effect, m.DeleteUser):
            self.gateway.delete_user(uid, deadline=deadline)
            return dataclasses.replace(reads, deleted=True)
        elif isinstance(effect, m.MoveDivision):
            self.gateway.move_to_division(uid, effect.division_id, deadline=deadline)
        elif isinstance(effect, m.GrantRoles):
            grants = [RoleGrant(g.role_id, g.division_id) for g in effect.grants]
            self.gateway.grant_roles(uid, grants, deadline=deadline)
        elif isinstance(effect, m.AssignSkills):
            skills = [Proficiency(v.id, v.proficiency) for v in effect.skills]
            self.gateway.assign_skills(uid, skills, deadline=deadline)
        elif isinstance(effect, m.AssignLanguages):
            languages = [Proficiency(v.id, v.proficiency) for v in effect.languages]
            self.gateway.assign_languages(uid, languages, deadline=deadline)
        return reads

    def _apply_queue(
        self,
        uid: str,
        effect: m.RemoveQueue | m.AddQueue | m.JoinQueues,
        reads: _Reads,
        deadline: float,
    ) -> _Reads:
        if isinstance(effect, m.RemoveQueue):
            self._remove(effect.queue.id, uid, reads, deadline)
            return reads
        reads = dataclasses.replace(reads, queues=None)  # the listing no longer holds
        if isinstance(effect, m.AddQueue):
            self.gateway.add_queue_member(effect.queue.id, uid, deadline=deadline)
        else:
            flags = {q.id: q.joined for q in effect.queues}
            self.gateway.set_queues_joined(uid, flags, deadline=deadline)
        return reads

    def _remove(self, queue_id: str, uid: str, reads: _Reads, deadline: float) -> None:
        """One removal, or its outcome in the worker's bulk removal for the round."""
        done = reads.read.removals if reads.read is not None else None
        if done is None or queue_id not in done:
            self.gateway.remove_queue_member(queue_id, uid, deadline=deadline)
        elif (error := done[queue_id]) is not None:
            raise error  # Genesys's answer for this user in the bulk request

    def _apply_state(
        self, uid: str, effect: m.SetState | m.Undelete, reads: _Reads, deadline: float
    ) -> _Reads:
        """A state change. After an undelete, the seconds until the deactivation answered."""
        if isinstance(effect, m.Undelete):
            user = self.gateway.restore_user(uid, deadline=deadline)
            # Genesys brings an undeleted user back active (2.4): from now until the
            # deactivation right after it answers, the person could sign in.
            at = self.clock() if user.state == "active" else None
            return dataclasses.replace(reads, user=user, undeleted_at=at, active_s=0.0, answer=user)
        # The version: the undelete's answer; for the activate, the snapshot's read in the same
        # run (issue 15: no read of its own); for the deactivate, await_idle's. A stale one is
        # a 409 and a re-read in the gateway.
        activate = effect.state == "active"
        current = reads.user if reads.undeleted_at is not None or activate else reads.fresh
        user = self.gateway.set_state(uid, effect.state, current=current, deadline=deadline)
        if reads.undeleted_at is not None:
            active_s = max(self.clock() - reads.undeleted_at, 0.0)
            return dataclasses.replace(
                reads, user=user, undeleted_at=None, active_s=active_s, answer=user
            )
        return dataclasses.replace(reads, user=user, answer=user)

    # -- a round's drains in bulk (the worker) ------------------------------------------------------

    def drain_plan(self, job: Job, queues: tuple[QueueMembership, ...]) -> tuple[str, ...]:
        """The queues the model removes for this job at its drain, given these memberships."""
        seen = m.QueuesSeen(frozenset(q.queue_id for q in queues), _refs(queues))
        effects = m.decide(job, seen, self.rules, now=self.clock(), jitter=1.0).effects
        return tuple(e.queue.id for e in effects if isinstance(e, m.RemoveQueue))

    def remove_in_bulk(
        self, by_queue: Mapping[str, Sequence[str]], *, deadline: float
    ) -> dict[tuple[str, str], GenesysError | None]:
        """Each queue's users removed with one request per 100 (``remove_queue_members``): per
        (queue, user), None when removed, else the error (a refusal, or the whole request's)."""
        outcomes: dict[tuple[str, str], GenesysError | None] = {}
        for queue_id, user_ids in by_queue.items():
            try:
                refused = self.gateway.remove_queue_members(queue_id, user_ids, deadline=deadline)
            except GenesysError as error:
                refused = dict.fromkeys(user_ids, error)
            outcomes.update({(queue_id, uid): refused.get(uid) for uid in user_ids})
        return outcomes

    # -- recording -------------------------------------------------------------------------------

    def _commit(
        self,
        conn: sa.Connection,
        claim: Claim,
        transition: m.Transition,
        calls: list[CallRecord],
    ) -> Job:
        """The step's record, its local effects, its ``job_steps`` row and its audit events, in
        the caller's transaction, fenced on the lease."""
        if self._before_commit is not None:
            self._before_commit(claim.job)
        if jobs.stored_action(conn, claim.job.id) != claim.job.action:
            # A delete upgraded this deactivate while the step ran (the upgrade is stored
            # unfenced): the step's record is the delete's, which goes on.
            transition = m.upgraded_meanwhile(claim.job, transition, self.clock())
        new = jobs.save(conn, claim, transition.job, lease_s=self.lease_s)
        for effect in transition.effects:
            if isinstance(effect, m.WriteTombstone):
                jobs.write_tombstone(conn, effect.row)
        old = claim.job
        detail = {
            **transition.detail,
            "worker": claim.owner,
            "calls": [_call_dict(c) for c in calls],
        }
        jobs.add_step(
            conn,
            old.id,
            step=old.step,
            state=new.state,
            at=new.updated_at,
            outcome=transition.outcome,
            detail=detail,
            actor=claim.owner,
        )
        recorder = self.audit.recorder(conn)
        for tag in transition.events:
            recorder.record(
                tag,
                actor=old.requested_by,
                outcome=transition.outcome,
                idp=old.idp,
                scim_id=old.scim_id,
                genesys_user_id=old.user_id,
                job_id=old.id,
                detail=detail,
            )
        return new
