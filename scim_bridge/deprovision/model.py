"""The deprovisioning state machine: (job record, what was observed) -> (new record, effects, events).

Functional core (STYLE.md 4; cosmicpython ``sync.py:determine_actions``): no Flask, SDK, clock
or I/O. ``decide`` takes the job's record (``record.Job``) and what the runner read for its
current step, and returns a ``Transition``: the new record, the Genesys effects to run and the
audit events to append. ``command`` does the same for an operator's or a request's command
(approve, retry, cancel, upgrade, cut access). The runner executes the effects and, in one
transaction, stores ``Transition.job`` and appends ``Transition.events``; when an effect fails it
hands the failure back here (``Failure``, with the effects that did succeed) and records what this
module says about it. Times arrive as plain numbers (``now``); nothing here reads a clock.

A job's ``step`` is always the next thing to do, so a process that dies mid-step leaves the
job at that step and whoever resumes it re-reads Genesys and does it again: every effect is
idempotent against Genesys (removing an absent member, setting a state already held, deleting a
deleted user all succeed quietly).

    deactivate: snapshot > guard > await_idle > deactivate > drain > done
    delete:     snapshot > guard > await_idle > deactivate > breaker > drain > verify_before
                > delete > confirm_deleted > verify_after > tombstone > done
                                             \\ mismatch > restore > confirm_restored > held
    reactivate: snapshot > activate > restore_division > restore_roles > restore_skills
                > restore_languages > restore_queues > verify_restore > done
                                                        \\ difference > held (retry redoes them)

Adding a step: a name in ``record.Step``, its place in ``SEQUENCES``, a handler in ``_HANDLERS``
(it receives the job, its observation and a ``_Context``; it returns a ``Decision``), and the
runner's read for it (``runner.Runner._observe``). Adding a command: a frozen dataclass in
``Command`` and a function in ``_COMMANDS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from scim_bridge.audit.tags import Tag
from scim_bridge.deprovision import evidence
from scim_bridge.deprovision.record import (
    EMPTY,
    FINISHED_STATES,
    OPEN_STATES,
    Acceptance,
    Action,
    Evidence,
    EvidencePart,
    Footprint,
    ForcedCut,
    Grant,
    Job,
    JobState,
    Level,
    PendingJob,
    QueueRef,
    Restoration,
    Snapshot,
    Step,
    Unremoved,
    footprint_to,
)
from scim_bridge.timestamps import iso

__all__ = ["FINISHED_STATES", "OPEN_STATES", "Action", "Job", "JobState", "Step"]

HISTORY_STEPS: tuple[Step, ...] = ("verify_before", "verify_after")

SEQUENCES: dict[Action, tuple[Step, ...]] = {
    # Access first (issue 10): nothing that can hold or fail for long comes before the deactivate;
    # only the guard (protected users, dry run: before any change) and a bounded wait for a live
    # conversation (ACTIVE_CONVERSATION_WAIT) do.
    "deactivate": ("snapshot", "guard", "await_idle", "deactivate", "drain", "done"),
    "delete": (
        "snapshot",
        "guard",
        "await_idle",
        "deactivate",
        "breaker",
        "drain",
        "verify_before",
        "delete",
        "confirm_deleted",
        "verify_after",
        "tombstone",
        "done",
    ),
    "reactivate": (
        "snapshot",
        "activate",
        "restore_division",
        "restore_roles",
        "restore_skills",
        "restore_languages",
        "restore_queues",
        "verify_restore",
        "done",
    ),
}
# Reactivation's restores of the footprint (issue 12): each its own durable, idempotent step; a
# part Genesys refuses for good is recorded (``Restoration.failed``) and the next part goes on.
RESTORE_STEPS: tuple[Step, ...] = (
    "restore_division",
    "restore_roles",
    "restore_skills",
    "restore_languages",
)


@dataclasses.dataclass(frozen=True)
class Rules:
    """Timings the model applies; the runner builds them from settings (tests shorten them)."""

    conversation_poll_s: float = 30.0
    conversation_wait_max_s: float = 15 * 60.0  # ACTIVE_CONVERSATION_WAIT
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0
    confirm_delete_retries: int = 5
    # Tries at removing the queue memberships Genesys refuses (backoff between), then the job goes
    # on with them recorded: with the defaults about ten minutes.
    drain_attempts: int = 8


# --- observations ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UserSeen:
    """The user as read now (``state`` None: Genesys does not know the id, even as deleted).

    ``user``: the profile (``GenesysUser`` fields) for the snapshot; ``queues``: the memberships
    read with it; ``restorable``: for a reactivate, what the bridge removed earlier."""

    state: str | None
    queue_ids: frozenset[str] = frozenset()
    user: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    queues: tuple[QueueRef, ...] = ()
    restorable: tuple[QueueRef, ...] = ()
    # The footprint read with it (deactivate, delete), or why it could not be read.
    footprint: Footprint | None = None
    footprint_error: str | None = None
    # For a reactivate: the footprint before the first change, and the job that recorded it.
    restorable_footprint: tuple[Footprint, str] | None = None
    # The memberships were not listed: left to the drain, after the deactivation (issue 11).
    queues_deferred: bool = False


@dataclasses.dataclass(frozen=True)
class PolicyView:
    """What the guard needs: a protecting pattern that matched, the breaker's count and limit."""

    protected_by: str | None
    user_state: str | None
    deletes_in_window: int = 0
    breaker_limit: int | None = None
    history_since: str = ""  # for a DRY_RUN plan (HISTORY_SINCE)


@dataclasses.dataclass(frozen=True)
class QueuesSeen:
    queue_ids: frozenset[str]
    memberships: tuple[QueueRef, ...] = ()  # names and joined state, where known


# The parts of a restore verify_restore can check (``restore_checks``).
RESTORE_PARTS = frozenset({"division", "roles", "skills", "languages", "queues"})


@dataclasses.dataclass(frozen=True)
class FootprintSeen:
    """verify_restore: the footprint and queue memberships as Genesys holds them now.

    ``checked``: the parts read back (``restore_checks``); the others are not compared."""

    footprint: Footprint
    queues: tuple[QueueRef, ...] = ()
    checked: frozenset[str] = RESTORE_PARTS


@dataclasses.dataclass(frozen=True)
class ConversationsSeen:
    """``busy`` None: Genesys answered without ``conversationSummary`` (expands are best effort):
    not known, which is not an outage to wait on."""

    busy: bool | None


_EPOCH = datetime.fromtimestamp(0, UTC)
_NO_WINDOW = evidence.Window(_EPOCH, _EPOCH)  # tables that do not care about the window


@dataclasses.dataclass(frozen=True)
class HistorySeen:
    """The conversations analytics attributes to the user over ``window``.

    ``parts``: what each API covered (``deprovision/proof.py``); ``lake_ids`` / ``lake_window``:
    what the async job found and over which window, ``tail_window``: the synchronous query's, with
    ``by_interval`` its ids per interval (what the check after a delete looks for again)."""

    conversation_ids: frozenset[str]
    window: evidence.Window = _NO_WINDOW
    queries: int = 0
    batch_users: int = 1
    by_interval: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    parts: tuple[EvidencePart, ...] = ()
    lake_ids: frozenset[str] | None = None
    lake_window: evidence.Window | None = None
    tail_window: evidence.Window | None = None


@dataclasses.dataclass(frozen=True)
class HistoryPending:
    """An async details job is running at Genesys for this check: come back at ``poll_at`` (the
    same time for every job waiting on it, so that one poll serves them all: no jitter)."""

    pending: PendingJob
    poll_at: float


@dataclasses.dataclass(frozen=True)
class HistoryLost:
    """The async details job failed or expired again and again: no proof can be had now."""

    pending: PendingJob
    reason: str


@dataclasses.dataclass(frozen=True)
class Ready:
    """Nothing to read first: the effect itself re-reads (the gateway's ``set_state`` and
    ``delete_user`` are no-ops when Genesys already holds the target state)."""


ErrorKind = Literal[
    "rate-limit",
    "outage",
    "version-conflict",
    "active-conversation",
    "auth",
    "not-found",
    "permission",
    "invalid",
]


@dataclasses.dataclass(frozen=True)
class Failure:
    """Reading or acting failed. ``applied``: the effects that succeeded before it (a queue
    removed is recorded even when the next removal failed); ``error``: for the audit detail."""

    kind: ErrorKind
    retry_after_s: float | None = None
    applied: tuple[Effect, ...] = ()
    error: Mapping[str, Any] | None = None
    # Queue removals Genesys refused for good (a memberBy=group membership: 400), each with its
    # error; the other effects of the step were all tried (``applied`` are those that succeeded).
    refused: tuple[tuple[QueueRef, Mapping[str, Any]], ...] = ()


Observation = (
    UserSeen
    | PolicyView
    | QueuesSeen
    | ConversationsSeen
    | HistorySeen
    | FootprintSeen
    | HistoryPending
    | HistoryLost
    | Ready
    | Failure
)


# --- effects (what the runner does outside the job's record) -----------------------------------


@dataclasses.dataclass(frozen=True)
class RemoveQueue:
    queue: QueueRef


@dataclasses.dataclass(frozen=True)
class AddQueue:
    """Membership only: Genesys's bulk add (a new member's joined flag is not documented)."""

    queue: QueueRef


@dataclasses.dataclass(frozen=True)
class JoinQueues:
    """The joined flag of each of these memberships set as the ref holds it, in one request."""

    queues: tuple[QueueRef, ...]


@dataclasses.dataclass(frozen=True)
class SetState:
    state: Literal["active", "inactive"]


@dataclasses.dataclass(frozen=True)
class DeleteUser:
    pass


@dataclasses.dataclass(frozen=True)
class RevokeSessions:
    """``DELETE /api/v2/tokens/{userId}``: deactivation alone is not documented to end sessions."""


@dataclasses.dataclass(frozen=True)
class Undelete:
    """Restore a deleted user; Genesys brings it back ``active`` (genesys-api.md 2.4), so a
    ``SetState("inactive")`` always follows in the same step (the runner times the gap)."""


@dataclasses.dataclass(frozen=True)
class WriteTombstone:
    """Local: the ``tombstones`` row, written in the step's transaction."""

    row: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class MoveDivision:
    division_id: str


@dataclasses.dataclass(frozen=True)
class GrantRoles:
    grants: tuple[Grant, ...]


@dataclasses.dataclass(frozen=True)
class AssignSkills:
    skills: tuple[Level, ...]


@dataclasses.dataclass(frozen=True)
class AssignLanguages:
    languages: tuple[Level, ...]


GenesysEffect = (
    RemoveQueue
    | AddQueue
    | JoinQueues
    | SetState
    | DeleteUser
    | RevokeSessions
    | Undelete
    | MoveDivision
    | GrantRoles
    | AssignSkills
    | AssignLanguages
)
Effect = GenesysEffect | WriteTombstone


# --- operator and request commands -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Approve:
    """Release a held job (past the breaker, a lost history job, a mismatch). A history mismatch
    is approved only by accepting, by id, every conversation found missing (``accept``), with a
    ``reason``: the acceptance is recorded and the delete proceeds."""

    actor: str
    accept: frozenset[str] = frozenset()
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Retry:
    """Run a held, waiting or failed job again now, from its recorded step (not approved)."""

    actor: str


@dataclasses.dataclass(frozen=True)
class Cancel:
    """The latest intent wins: ``leased`` jobs stop at their next step (the holder records it)."""

    actor: str
    leased: bool
    reason: str = "superseded"


@dataclasses.dataclass(frozen=True)
class Upgrade:
    """An open deactivate becomes a delete and goes on from where it is (``join``)."""


@dataclasses.dataclass(frozen=True)
class CutAccess:
    """Cut access now, whatever the job is waiting for (a live conversation): the job is due at
    once, its sessions are revoked at its deactivate step even while Genesys refuses the
    deactivation, which is then retried until Genesys allows it."""

    actor: str
    reason: str


Command = Approve | Retry | Cancel | Upgrade | CutAccess


class NotAllowed(ValueError):
    """The job is not in a state that allows this command (the admin API answers 409)."""


# --- what a transition returns -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Transition:
    """The new record, the effects to run (in order) and the audit events to append with
    ``detail``. ``actor``: the operator for a command (None: the job's requester, a step)."""

    job: Job
    effects: tuple[Effect, ...] = ()
    events: tuple[Tag, ...] = ()
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    actor: str | None = None
    # What the step found when the job goes on regardless (a history mismatch: "mismatch");
    # None: the outcome follows the job's state.
    found: str | None = None

    @property
    def outcome(self) -> str:
        if self.found is not None:
            return self.found
        state = self.job.state
        return "ok" if state in ("pending", "running", "done") else state


@dataclasses.dataclass(frozen=True)
class Decision:
    """A step handler's answer; ``_settle`` turns it into a ``Transition``.

    ``job``: the record with what the step learned (None: unchanged). ``detail``: what to add to
    the step's audit detail. ``retry_in_s`` is set with ``state="waiting"``."""

    step: Step
    state: JobState = "running"
    effects: tuple[Effect, ...] = ()
    events: tuple[Tag, ...] = ()
    waiting_on: str | None = None
    retry_in_s: float | None = None
    reason: str | None = None
    access_cut: bool = False
    reset_attempts: bool = True
    job: Job | None = None
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    due_at: float | None = None  # with state="waiting": this exact time instead of retry_in_s
    found: str | None = None  # the events' outcome when it is not the state's (Transition)


@dataclasses.dataclass(frozen=True)
class _Context:
    rules: Rules
    now: float


def _next(action: Action, step: Step) -> Step:
    sequence = SEQUENCES[action]
    return sequence[sequence.index(step) + 1]


def _finish(*events: Tag, **fields: Any) -> Decision:
    return Decision(
        step="done", state="done", events=(*events, Tag.DEPROVISION_JOB_COMPLETED), **fields
    )


def _fail(job: Job, reason: str, **fields: Any) -> Decision:
    return Decision(
        step=job.step,
        state="failed",
        events=(Tag.DEPROVISION_JOB_FAILED,),
        reason=reason,
        **fields,
    )


def backoff(rules: Rules, attempts: int) -> float:
    """Exponential, capped; the runner adds jitter."""
    return float(min(rules.backoff_cap_s, rules.backoff_base_s * 2 ** min(attempts, 16)))


# --- the machine -------------------------------------------------------------------------------


def decide(
    job: Job,
    seen: Observation,
    rules: Rules | None = None,
    *,
    now: float = 0.0,
    jitter: float = 1.0,
) -> Transition:
    """The transition for ``job`` at ``job.step`` given what was just observed.

    ``jitter`` (the runner draws it in [1, 1.2]) stretches a retry delay, so that jobs deferred
    together do not come back together."""
    ctx = _Context(rules or Rules(), now)
    if job.cancel_requested:
        decision = Decision(
            step=job.step,
            state="cancelled",
            events=(Tag.DEPROVISION_JOB_CANCELLED,),
            reason="superseded",
        )
    elif isinstance(seen, Failure):
        decision = _on_failure(job, seen, ctx)
    else:
        handler = _HANDLERS.get(job.step)
        if handler is None:
            raise ValueError(f"no step {job.step!r} to run for a {job.action} job")
        decision = handler(job, seen, ctx)
    return _settle(job, decision, now, jitter)


def _settle(job: Job, d: Decision, now: float, jitter: float) -> Transition:
    base = d.job or job
    due = now
    if d.state == "waiting" and d.due_at is not None:
        due = max(now, d.due_at)
    elif d.state == "waiting" and d.retry_in_s is not None:
        due = now + d.retry_in_s * jitter
    new = dataclasses.replace(
        base,
        step=d.step,
        state=d.state,
        attempts=0 if d.reset_attempts else job.attempts + 1,
        waiting_on=d.waiting_on,
        reason=d.reason,
        due_at=due,
        updated_at=now,
        access_cut_at=now if d.access_cut and base.access_cut_at is None else base.access_cut_at,
        finished_at=now if d.state in FINISHED_STATES else job.finished_at,
    )
    events = d.events
    repeated_wait = d.state == "waiting" and job.attempts > 0
    if not events and not repeated_wait:
        events = (Tag.DEPROVISION_JOB_STEP,)
    detail: dict[str, Any] = {"step": job.step, **d.detail}
    if d.waiting_on:
        detail["waiting_on"] = d.waiting_on
    if d.retry_in_s is not None or d.due_at is not None:
        detail["retry_in_s"] = round(due - now, 3)
    if d.reason:
        detail["reason"] = d.reason
    detail["next_step"] = d.step
    return Transition(new, d.effects, events, detail, found=d.found)


def _unexpected(job: Job, seen: Observation) -> ValueError:
    return ValueError(f"step {job.step} cannot use {type(seen).__name__}")


def _snapshot(job: Job, seen: Observation, ctx: _Context) -> Decision:
    if not isinstance(seen, UserSeen):
        raise _unexpected(job, seen)
    if seen.state is None:
        return _fail(job, "not-found")
    if seen.state == "deleted":
        if job.action == "delete":
            # Deleted already (outside the bridge): nothing to do, nothing this job can prove.
            return _finish(reason="already-deleted")
        return _fail(job, "not-found")
    snapshot = Snapshot(
        dict(seen.user),
        seen.queues,
        ctx.now,
        footprint=seen.footprint,
        footprint_error=seen.footprint_error,
        queues_read=not seen.queues_deferred,
    )
    detail: dict[str, Any] = {"snapshot": _shown(seen)}
    queues = job.queues
    if job.action == "reactivate":
        queues = dataclasses.replace(queues, to_restore=seen.restorable)
        detail["restore_queues"] = [q.id for q in seen.restorable]
    restoration = _restore_target(job, seen, detail)
    return Decision(
        step=_next(job.action, "snapshot"),
        events=(Tag.DEPROVISION_USER_SNAPSHOT,),
        job=dataclasses.replace(job, snapshot=snapshot, queues=queues, restoration=restoration),
        detail=detail,
    )


def _shown(seen: UserSeen) -> dict[str, Any]:
    """The snapshot as its audit event shows it."""
    shown: dict[str, Any] = {
        "state": seen.state,
        "version": seen.user.get("version"),
        "queues": [q.id for q in seen.queues],
    }
    if seen.footprint is not None:
        shown["footprint"] = footprint_summary(seen.footprint)
    if seen.footprint_error is not None:
        shown["footprint_error"] = seen.footprint_error
    if seen.queues_deferred:
        shown["queues_deferred"] = True  # listed by the drain, after the deactivation
    return shown


def _restore_target(job: Job, seen: UserSeen, detail: dict[str, Any]) -> Restoration:
    """The footprint before the first change: an earlier job's of the same epoch (a deactivation
    before this delete stripped what this read sees), else this read's."""
    first = seen.restorable_footprint
    if first is None and job.action != "reactivate" and seen.footprint is not None:
        first = (seen.footprint, job.id)
    if first is None:
        return job.restoration
    if job.action == "reactivate":
        detail["restore_footprint"] = {**footprint_summary(first[0]), "from_job": first[1]}
    return dataclasses.replace(job.restoration, target=first[0], source_job_id=first[1])


def footprint_summary(fp: Footprint) -> dict[str, Any]:
    """A footprint for an audit event's detail: ids, no more."""
    return {
        "division_id": fp.division_id,
        "grants": [f"{g.role_id}@{g.division_id}" for g in fp.grants],
        "skills": {v.id: v.proficiency for v in fp.skills},
        "languages": {v.id: v.proficiency for v in fp.languages},
    }


def plan(job: Job, history_since: str) -> list[dict[str, Any]]:
    """DRY_RUN: the steps after the guard that a real run would take, from ``SEQUENCES``."""
    queues = [q.id for q in job.snapshot.queues] if job.snapshot else []
    extra: dict[Step, dict[str, Any]] = {
        "drain": {"remove_queues": queues},
        "deactivate": {"set_state": "inactive", "revoke_sessions": True},
        "verify_before": {"history_since": history_since},
    }
    sequence = SEQUENCES[job.action]
    after_guard = sequence[sequence.index("guard") + 1 :] if "guard" in sequence else sequence
    return [{"step": step, **extra.get(step, {})} for step in after_guard if step != "done"]


def _guard(job: Job, seen: Observation, ctx: _Context) -> Decision:
    """Before any change: protected users, the policy delete's precondition, dry runs. The delete
    breaker is its own step, after the deactivation (access first)."""
    if not isinstance(seen, PolicyView):
        raise _unexpected(job, seen)
    if seen.protected_by is not None:
        return Decision(
            step=job.step,
            state="cancelled",
            events=(Tag.DEPROVISION_USER_PROTECTED,),
            reason="protected",
        )
    if job.from_policy and seen.user_state != "inactive":
        # DELETE_INACTIVE_AFTER applies to users the bridge deactivated and nobody brought back.
        return Decision(
            step=job.step,
            state="cancelled",
            events=(Tag.DEPROVISION_JOB_CANCELLED,),
            reason="reactivated",
        )
    if job.dry_run:
        steps = plan(job, seen.history_since)
        return _finish(
            Tag.DEPROVISION_JOB_PLANNED,
            job=dataclasses.replace(job, plan=tuple(steps)),
            detail={"plan": steps},
        )
    return Decision(step="await_idle")


def _breaker(job: Job, seen: Observation, ctx: _Context) -> Decision:
    """The delete breaker holds the *delete*: the user is inactive already (access first)."""
    if not isinstance(seen, PolicyView):
        raise _unexpected(job, seen)
    limit = seen.breaker_limit
    if not job.approved and limit is not None and seen.deletes_in_window >= limit:
        return Decision(
            step=job.step,
            state="held",
            events=(Tag.DEPROVISION_BREAKER_TRIPPED, Tag.DEPROVISION_JOB_HELD),
            waiting_on="approval",
            reason="breaker",
            detail={"deletes_in_window": seen.deletes_in_window, "limit": limit},
        )
    # It counts against the delete breaker from now.
    counted = dataclasses.replace(
        job,
        guarded_for_delete=True,
        delete_counted_at=job.delete_counted_at if job.guarded_for_delete else ctx.now,
    )
    return Decision(step="drain", job=counted)


def _after_drain(job: Job) -> Step:
    """A deactivate upgraded to a delete after its breaker step would have come goes back to it."""
    if job.action == "delete" and not job.guarded_for_delete:
        return "breaker"
    return _next(job.action, "drain")


def _drain(job: Job, seen: Observation, ctx: _Context) -> Decision:
    if not isinstance(seen, QueuesSeen):
        raise _unexpected(job, seen)
    if job.snapshot is not None and not job.snapshot.queues_read:
        # A snapshot that left the memberships to the drain: record them first (no removal
        # yet), so that a crash after the removals still finds them recorded (issue 11).
        snapshot = dataclasses.replace(job.snapshot, queues=seen.memberships, queues_read=True)
        detail = {"snapshot_queues": [q.id for q in seen.memberships]}
        return Decision(
            step="drain", job=dataclasses.replace(job, snapshot=snapshot), detail=detail
        )
    # Memberships the snapshot saw that are gone now: an earlier run of this step removed them
    # and died before recording it. They are recorded as removed all the same, so that a
    # reactivation restores them. Not one whose removal Genesys refused: something else ended
    # it (the IdP took the user out of the group it came from), and a reactivation re-adding it
    # would make a group's membership a direct one that outlives the group's.
    recorded = {q.id for q in job.queues.removed}
    recorded.update(u.queue.id for u in job.queues.unremoved)
    snapped = job.snapshot.queues if job.snapshot else ()
    gone = tuple(q for q in snapped if q.id not in seen.queue_ids and q.id not in recorded)
    known = {q.id: q for q in (*snapped, *seen.memberships)}
    effects = tuple(RemoveQueue(known.get(i, QueueRef(i))) for i in sorted(seen.queue_ids))
    job, detail = _applied(job, tuple(RemoveQueue(q) for q in gone) + effects, ctx.now)
    events: tuple[Tag, ...] = (Tag.DEPROVISION_QUEUE_REMOVED,) if effects or gone else ()
    if job.queues.unremoved:
        # What an earlier try could not remove is gone now (left the group, or removed here).
        detail["unremoved_resolved"] = [u.queue.id for u in job.queues.unremoved]
        job = dataclasses.replace(job, queues=dataclasses.replace(job.queues, unremoved=()))
    nxt = _after_drain(job)
    if nxt == "done":
        return _finish(*events, effects=effects, job=job, detail=detail)
    return Decision(step=nxt, effects=effects, events=events, job=job, detail=detail)


def _applied(job: Job, effects: tuple[Effect, ...], now: float) -> tuple[Job, dict[str, Any]]:
    """The record and detail once these effects are done: queue removals (reactivation restores
    exactly what is recorded here), the deactivation and the sessions revoked."""
    detail: dict[str, Any] = {}
    removed = tuple(e.queue for e in effects if isinstance(e, RemoveQueue))
    if removed:
        queues = dataclasses.replace(job.queues, removed=(*job.queues.removed, *removed))
        job = dataclasses.replace(job, queues=queues)
        detail["queues_removed"] = [q.id for q in removed]
    if SetState("inactive") in effects and job.access_cut_at is None:
        job = dataclasses.replace(job, access_cut_at=now)
        detail["state_set"] = "inactive"
    if RevokeSessions() in effects:
        job = dataclasses.replace(job, sessions_revoked_at=now)
        detail["sessions_revoked"] = True
    return job, detail


def _wait_for_conversation(job: Job, ctx: _Context) -> Decision:
    """A bounded wait (ACTIVE_CONVERSATION_WAIT); when it runs out access is cut anyway: the
    sessions at once, the deactivation as soon as Genesys allows it."""
    now = ctx.now
    started = job.waiting_since if job.waiting_since is not None else now
    if now - started >= ctx.rules.conversation_wait_max_s:
        forced = ForcedCut(
            by="policy:active-conversation-wait",
            reason=f"ACTIVE_CONVERSATION_WAIT ({ctx.rules.conversation_wait_max_s:g} s) ran out",
            at=now,
        )
        return Decision(
            step="deactivate",
            events=(Tag.DEPROVISION_CONVERSATION_WAIT_EXPIRED,),
            job=dataclasses.replace(job, forced=forced),
            detail={"waited_s": round(now - started, 3)},
        )
    first = job.waiting_since is None
    return Decision(
        step="await_idle",
        state="waiting",
        events=(Tag.DEPROVISION_CONVERSATION_WAITING,) if first else (),
        waiting_on="active-conversation",
        retry_in_s=ctx.rules.conversation_poll_s,
        reset_attempts=False,
        job=dataclasses.replace(job, waiting_since=now) if first else None,
    )


def _await_idle(job: Job, seen: Observation, ctx: _Context) -> Decision:
    if job.forced is not None:
        # Cut access now (an operator, or the wait ran out): no more waiting.
        return Decision(step="deactivate", detail={"forced_by": job.forced.by})
    if not isinstance(seen, ConversationsSeen):
        raise _unexpected(job, seen)
    if seen.busy is None:
        # No conversationSummary in Genesys's answer (best effort): not known is not "busy" and
        # not an outage. Genesys itself refuses a deactivation during a live conversation (409),
        # which then waits as any conversation does: so deactivate now.
        return Decision(
            step="deactivate",
            events=(Tag.DEPROVISION_CONVERSATION_UNKNOWN,),
            detail={"conversation_summary": "missing", "decided": "deactivate"},
        )
    if seen.busy:
        return _wait_for_conversation(job, ctx)
    return Decision(step="deactivate", job=dataclasses.replace(job, waiting_since=None))


def _deactivate(job: Job, seen: Observation, ctx: _Context) -> Decision:
    """Access is cut: the user inactive and every session ended. Forced (cut-access, or the wait
    ran out), the sessions go first, so that they end even while Genesys still refuses the
    deactivation for a live conversation, and again once it is done."""
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    effects: tuple[Effect, ...] = (SetState("inactive"), RevokeSessions())
    detail: dict[str, Any] = {"state_set": "inactive", "sessions_revoked": True}
    if job.forced is not None:
        effects = (RevokeSessions(), *effects)
        detail["forced"] = {"by": job.forced.by, "reason": job.forced.reason}
    events = (Tag.DEPROVISION_USER_DEACTIVATED, Tag.DEPROVISION_SESSIONS_REVOKED)
    recorded = dataclasses.replace(job, sessions_revoked_at=ctx.now, waiting_since=None)
    nxt = _next(job.action, "deactivate")
    return Decision(
        step=nxt, effects=effects, events=events, access_cut=True, job=recorded, detail=detail
    )


def _evidence(seen: HistorySeen, missing: frozenset[str] = frozenset()) -> Evidence:
    ordered = tuple(sorted(seen.conversation_ids))
    return Evidence(
        count=len(ordered),
        sha256=evidence.digest(ordered),
        sample=ordered[: evidence.SAMPLE_SIZE],
        window=seen.window,
        analytics_queries=seen.queries,
        users_in_query=seen.batch_users,
        missing_count=len(missing) if missing else None,
        missing_sample=tuple(sorted(missing)[: evidence.SAMPLE_SIZE]) if missing else None,
        parts=seen.parts,
    )


def _history_wait(job: Job, seen: Observation) -> Decision | None:
    """A check still waiting on Genesys's async job, or given up on it; None: proof in hand."""
    if isinstance(seen, HistoryPending):
        pending = seen.pending
        # The job id goes on the record before the wait: a process that dies polls it again.
        recorded = dataclasses.replace(job.history, pending=pending)
        return Decision(
            step=job.step,
            state="waiting",
            # Audited once per async job submitted (its id, for whoever resumes), not per poll.
            events=(Tag.DEPROVISION_HISTORY_WAITING,) if pending.polls == 0 else (),
            waiting_on="history-job",
            due_at=seen.poll_at,
            reset_attempts=False,
            job=dataclasses.replace(job, history=recorded),
            detail={
                "history_job": pending.job_id,
                "users_in_job": len(pending.user_ids),
                "polls": pending.polls,
                "resubmits": pending.resubmits,
                **({"lost_before": pending.lost_reason} if pending.lost_reason else {}),
            },
        )
    if isinstance(seen, HistoryLost):
        # Held for a person; an approve or retry submits a new job (the lost one is forgotten).
        cleared = dataclasses.replace(job.history, pending=None)
        return Decision(
            step=job.step,
            state="held",
            events=(Tag.DEPROVISION_JOB_HELD,),
            waiting_on="approval",
            reason=f"history-job-lost: {seen.reason}",
            job=dataclasses.replace(job, history=cleared),
            detail={
                "history_job": seen.pending.job_id,
                "resubmits": seen.pending.resubmits,
            },
        )
    if not isinstance(seen, HistorySeen):
        raise _unexpected(job, seen)
    return None


def _verify_before(job: Job, seen: Observation, ctx: _Context) -> Decision:
    waiting = _history_wait(job, seen)
    if waiting is not None:
        return waiting
    assert isinstance(seen, HistorySeen)
    if job.history.before is not None:
        return _recheck(job, seen)
    before = _evidence(seen)
    history = dataclasses.replace(
        job.history,
        before=before,
        before_ids=seen.conversation_ids,
        before_intervals=dict(seen.by_interval),
        before_lake_ids=seen.lake_ids,
        before_lake_window=seen.lake_window,
        before_tail_window=seen.tail_window,
        pending=None,
    )
    return Decision(
        step="delete",
        events=(Tag.DEPROVISION_HISTORY_CAPTURED,),
        job=dataclasses.replace(job, history=history),
        detail={"evidence": evidence.shown(before)},
    )


def _missing(job: Job, seen: HistorySeen) -> frozenset[str]:
    """What the original evidence holds that Genesys does not return now, less what operators
    accepted as missing."""
    before = job.history.before_ids if job.history.before_ids is not None else frozenset()
    return before - seen.conversation_ids - job.history.accepted_ids


def _recheck(job: Job, seen: HistorySeen) -> Decision:
    """verify_before again after a held mismatch (a retry): against the *original* evidence,
    which is never replaced. Still missing: held again; all back: the delete goes on."""
    missing = _missing(job, seen)
    shown = evidence.shown(_evidence(seen, missing))
    history = dataclasses.replace(job.history, missing=missing, pending=None)
    recorded = dataclasses.replace(job, history=history)
    detail = {
        "recheck": shown,
        "against": job.history.before.sha256 if job.history.before else None,
    }
    if missing:
        return Decision(
            step="verify_before",
            state="held",
            events=(Tag.DEPROVISION_HISTORY_MISMATCH, Tag.DEPROVISION_JOB_HELD),
            waiting_on="approval",
            reason="history-mismatch",
            job=recorded,
            detail=detail,
        )
    return Decision(
        step="delete", events=(Tag.DEPROVISION_HISTORY_VERIFIED,), job=recorded, detail=detail
    )


def _delete(job: Job, seen: Observation, ctx: _Context) -> Decision:
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    return Decision(step="confirm_deleted", effects=(DeleteUser(),), detail={"delete_sent": True})


def _confirm_deleted(job: Job, seen: Observation, ctx: _Context) -> Decision:
    if not isinstance(seen, UserSeen):
        raise _unexpected(job, seen)
    if seen.state in ("deleted", None):
        # None: gone even from ?state=deleted; the history check still says what survived.
        return Decision(step="verify_after", events=(Tag.DEPROVISION_USER_DELETED,))
    if job.attempts >= ctx.rules.confirm_delete_retries:
        return _fail(job, "delete-not-confirmed")
    return Decision(
        step="delete",
        state="waiting",
        waiting_on="delete-confirmation",
        retry_in_s=backoff(ctx.rules, job.attempts),
        reset_attempts=False,
    )


def _verify_after(job: Job, seen: Observation, ctx: _Context) -> Decision:
    waiting = _history_wait(job, seen)
    if waiting is not None:
        return waiting
    assert isinstance(seen, HistorySeen)
    missing = _missing(job, seen)
    after = _evidence(seen, missing)
    history = dataclasses.replace(job.history, after=after, missing=missing, pending=None)
    recorded = dataclasses.replace(job, history=history)
    detail: dict[str, Any] = {"evidence": evidence.shown(after)}
    if job.history.accepted:
        detail["accepted"] = sorted(job.history.accepted_ids)
    return Decision(
        step="restore" if missing else "tombstone",
        events=(
            (Tag.DEPROVISION_HISTORY_MISMATCH,) if missing else (Tag.DEPROVISION_HISTORY_VERIFIED,)
        ),
        job=recorded,
        detail=detail,
        # The job goes on (restore) but the check failed: not "ok" on the trail (docs/audit.md).
        found="mismatch" if missing else None,
    )


def _restore(job: Job, seen: Observation, ctx: _Context) -> Decision:
    """Undo the delete: an undelete brings the user back *active* (genesys-api.md 2.4), so the
    same step deactivates at once and ends any session (the runner records the seconds active);
    confirm_restored then reads the state back."""
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    return Decision(
        step="confirm_restored",
        effects=(Undelete(), SetState("inactive"), RevokeSessions()),
        events=(Tag.DEPROVISION_USER_RESTORED,),
        job=dataclasses.replace(job, sessions_revoked_at=ctx.now),
        detail={"state_set": "inactive", "sessions_revoked": True},
    )


def _confirm_restored(job: Job, seen: Observation, ctx: _Context) -> Decision:
    """The restored user's state as Genesys reads it now: inactive, and the job is held for a
    person (there is no path that deletes without the proof); anything else restores again."""
    if not isinstance(seen, UserSeen):
        raise _unexpected(job, seen)
    if seen.state is None:
        return _fail(job, "not-found")
    missing = sorted(job.history.missing or ())
    detail = {
        "state_read_back": seen.state,
        "missing_count": len(missing),
        "missing_sample": missing[: evidence.SAMPLE_SIZE],
    }
    if seen.state == "inactive":
        # Held at verify_before: a retry re-checks against the original evidence; an approval
        # accepts the missing ids by name and the delete proceeds.
        return Decision(
            step="verify_before",
            state="held",
            events=(Tag.DEPROVISION_JOB_HELD,),
            waiting_on="approval",
            reason="history-mismatch",
            detail=detail,
        )
    if job.attempts >= ctx.rules.confirm_delete_retries:
        return Decision(
            step="restore",
            state="held",
            events=(Tag.DEPROVISION_JOB_HELD,),
            waiting_on="approval",
            reason="restore-not-confirmed",
            detail=detail,
        )
    return Decision(step="restore", reset_attempts=False, detail=detail)


def tombstone_row(job: Job, now: float) -> dict[str, Any]:
    """The ``tombstones`` row for a deleted user: who they were and the proof."""
    user = job.snapshot.user if job.snapshot else EMPTY
    history = job.history
    before = evidence.shown(history.before) if history.before else {}
    after = evidence.shown(history.after) if history.after else {}
    return {
        "user_id": job.user_id,
        "name": user.get("name"),
        "email": user.get("email"),
        "department": user.get("department"),
        "title": user.get("title"),
        "deleted_at": iso(now, digits=0),
        "job_id": job.id,
        "evidence_sha256": before.get("sha256"),
        "evidence_count": before.get("count"),
        "detail": {
            "before": before,
            "after": after,
            "username": user.get("username"),
            # What the user held before the first change (issue 12): a re-hire may restore it.
            "footprint": footprint_to(job.restoration.target)
            if job.restoration.target is not None
            else None,
            "queues": [dataclasses.asdict(q) for q in job.snapshot.queues] if job.snapshot else [],
        },
    }


def _tombstone(job: Job, seen: Observation, ctx: _Context) -> Decision:
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    row = tombstone_row(job, ctx.now)
    shown = {k: row[k] for k in ("user_id", "deleted_at", "evidence_sha256")}
    return _finish(
        Tag.DEPROVISION_TOMBSTONE_WRITTEN,
        effects=(WriteTombstone(row),),
        detail={"tombstone": shown},
    )


def _activate(job: Job, seen: Observation, ctx: _Context) -> Decision:
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    # Genesys gives back no role on reactivation (genesys-api.md 2.4): the restores follow.
    return Decision(
        step=_next(job.action, "activate"),
        effects=(SetState("active"),),
        events=(Tag.DEPROVISION_USER_REACTIVATED,),
        detail={"state_set": "active"},
    )


def _restore_division(job: Job, seen: Observation, ctx: _Context) -> Decision:
    """Back to the division of the snapshot (a delete moved the user to Home, 2.4). Nothing to
    send when the reactivation's own read found the user there already."""
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    target = job.restoration.target
    wanted = target.division_id if target is not None else None
    now_in = job.snapshot.user.get("division_id") if job.snapshot else None
    if wanted is None or wanted == now_in:
        return Decision(step=_next(job.action, job.step))
    return Decision(
        step=_next(job.action, job.step),
        effects=(MoveDivision(wanted),),
        events=(Tag.DEPROVISION_DIVISION_RESTORED,),
        detail={"division_restored": wanted},
    )


def _restore_part(job: Job, seen: Observation, ctx: _Context) -> Decision:
    """Roles in their divisions, skills or languages with their proficiency: one idempotent bulk
    call each (granting what is held, or assigning an equal proficiency, changes nothing)."""
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    target = job.restoration.target or Footprint()
    nxt = _next(job.action, job.step)
    effect: Effect
    if job.step == "restore_roles":
        if not target.grants:
            return Decision(step=nxt)
        effect, tag = GrantRoles(target.grants), Tag.DEPROVISION_ROLES_RESTORED
        detail: dict[str, Any] = {"roles_restored": footprint_summary(target)["grants"]}
    elif job.step == "restore_skills":
        if not target.skills:
            return Decision(step=nxt)
        effect, tag = AssignSkills(target.skills), Tag.DEPROVISION_SKILLS_RESTORED
        detail = {"skills_restored": footprint_summary(target)["skills"]}
    else:
        if not target.languages:
            return Decision(step=nxt)
        effect, tag = AssignLanguages(target.languages), Tag.DEPROVISION_LANGUAGES_RESTORED
        detail = {"languages_restored": footprint_summary(target)["languages"]}
    return Decision(step=nxt, effects=(effect,), events=(tag,), detail=detail)


def _restore_queues(job: Job, seen: Observation, ctx: _Context) -> Decision:
    """Re-add the memberships the bridge removed that are missing, then set the joined flag, in
    one request, of every one it adds and of any already there whose flag differs from the
    snapshot (an admin's unjoined re-add, a run that stopped between an add and its flag)."""
    wanted = {q.id: q for q in job.queues.to_restore or ()}
    nxt = _next(job.action, "restore_queues")
    if not wanted:
        return Decision(step=nxt)  # the bridge removed none: nothing was read (``Ready``)
    if not isinstance(seen, QueuesSeen):
        raise _unexpected(job, seen)
    missing = sorted(set(wanted) - seen.queue_ids)
    held = {q.id: q.joined for q in seen.memberships}
    flagged = sorted(
        i for i in set(wanted) & seen.queue_ids if held.get(i, wanted[i].joined) != wanted[i].joined
    )
    if not missing and not flagged:
        return Decision(step=nxt)
    refs = tuple(wanted[i] for i in missing)
    effects: tuple[Effect, ...] = tuple(AddQueue(q) for q in refs)
    effects += (JoinQueues(tuple(wanted[i] for i in sorted(missing + flagged))),)
    detail: dict[str, Any] = {"queues_restored": list(missing)}
    if flagged:
        detail["queues_rejoined"] = flagged
    if refs:  # a rerun keeps the record of what an earlier run re-added
        earlier = tuple(q for q in job.queues.restored or () if q.id not in missing)
        restored = dataclasses.replace(job.queues, restored=earlier + refs)
        job = dataclasses.replace(job, queues=restored)
    return Decision(
        step=nxt,
        effects=effects,
        events=(Tag.DEPROVISION_QUEUE_RESTORED,),
        job=job,
        detail=detail,
    )


def restore_checks(job: Job) -> frozenset[str]:
    """The parts verify_restore reads back: those of the target with something in them (an empty
    part cannot differ: the check only looks for what the target holds), and the queues when the
    bridge removed any. The runner reads nothing else (issue 15)."""
    target = job.restoration.target
    parts: set[str] = set()
    if target is not None:
        held = {
            "division": target.division_id is not None,
            "roles": bool(target.grants),
            "skills": bool(target.skills),
            "languages": bool(target.languages),
        }
        parts.update(part for part, some in held.items() if some)
    if job.queues.to_restore:
        parts.add("queues")
    return frozenset(parts)


def footprint_difference(
    target: Footprint | None,
    queues: tuple[QueueRef, ...],
    seen: FootprintSeen,
) -> dict[str, Any]:
    """What the snapshot holds that Genesys does not now (empty: all of it is back), over the
    parts ``seen`` checked."""
    diff: dict[str, Any] = {}
    checked = seen.checked
    if target is not None:
        now = seen.footprint
        division = target.division_id
        if "division" in checked and division is not None and now.division_id != division:
            diff["division"] = {"expected": division, "found": now.division_id}
        held = {(g.role_id, g.division_id) for g in now.grants}
        grants = [
            f"{g.role_id}@{g.division_id}"
            for g in target.grants
            if (g.role_id, g.division_id) not in held
        ]
        if grants and "roles" in checked:
            diff["roles"] = sorted(grants)
        for part, wanted, found in (
            ("skills", target.skills, now.skills),
            ("languages", target.languages, now.languages),
        ):
            levels = {v.id: v.proficiency for v in found}
            missing = {v.id: v.proficiency for v in wanted if levels.get(v.id) != v.proficiency}
            if missing and part in checked:
                diff[part] = missing
    held_queues = {q.id: q.joined for q in seen.queues}
    absent = sorted(q.id for q in queues if held_queues.get(q.id) != q.joined)
    if absent and "queues" in checked:
        diff["queues"] = absent
    return diff


def _verify_restore(job: Job, seen: Observation, ctx: _Context) -> Decision:
    """The footprint and queues now, against the snapshot: the difference goes on the job; a
    difference holds it at the first restore step (a retry redoes every restore, idempotently)."""
    if not isinstance(seen, FootprintSeen):
        raise _unexpected(job, seen)
    diff = footprint_difference(job.restoration.target, job.queues.to_restore or (), seen)
    restoration = dataclasses.replace(job.restoration, difference=diff)
    recorded = dataclasses.replace(job, restoration=restoration)
    detail: dict[str, Any] = {"difference": diff, "checked": sorted(seen.checked)}
    if job.restoration.target is None:
        detail["footprint"] = "no snapshot recorded: roles, skills and languages not restored"
    if job.restoration.failed:
        detail["failed"] = {k: dict(v) for k, v in job.restoration.failed.items()}
    if not diff:
        return _finish(Tag.DEPROVISION_FOOTPRINT_VERIFIED, job=recorded, detail=detail)
    return Decision(
        step=RESTORE_STEPS[0],
        state="held",
        events=(Tag.DEPROVISION_FOOTPRINT_MISMATCH, Tag.DEPROVISION_JOB_HELD),
        waiting_on="approval",
        reason="restore-incomplete",
        job=recorded,
        detail=detail,
    )


_HANDLERS: dict[Step, Callable[[Job, Observation, _Context], Decision]] = {
    "snapshot": _snapshot,
    "guard": _guard,
    "await_idle": _await_idle,
    "deactivate": _deactivate,
    "breaker": _breaker,
    "drain": _drain,
    "verify_before": _verify_before,
    "delete": _delete,
    "confirm_deleted": _confirm_deleted,
    "verify_after": _verify_after,
    "restore": _restore,
    "confirm_restored": _confirm_restored,
    "tombstone": _tombstone,
    "activate": _activate,
    "restore_division": _restore_division,
    "restore_roles": _restore_part,
    "restore_skills": _restore_part,
    "restore_languages": _restore_part,
    "restore_queues": _restore_queues,
    "verify_restore": _verify_restore,
}

_WAITING_ON: dict[ErrorKind, str] = {
    "rate-limit": "rate-limit",
    "outage": "genesys-outage",
    "version-conflict": "version-conflict",
    "auth": "genesys-auth",
}


def _on_failure(job: Job, failure: Failure, ctx: _Context) -> Decision:
    recorded, detail = _applied(job, failure.applied, ctx.now)
    if failure.error is not None:
        detail["error"] = dict(failure.error)
    kind = failure.kind
    if failure.refused and job.step == "drain":
        decision = _drain_refused(recorded, failure, ctx)
    elif job.step in RESTORE_STEPS and kind in ("permission", "not-found", "invalid"):
        return _restore_part_failed(recorded, failure, detail)
    elif kind == "active-conversation":
        decision = _refused_for_conversation(recorded, ctx)
    elif kind in _WAITING_ON:
        # Transient: never a failure (DESIGN.md: a 429 is never turned into a failure).
        delay = failure.retry_after_s
        if delay is None or delay <= 0:
            delay = backoff(ctx.rules, job.attempts)
        decision = Decision(
            step=job.step,
            state="waiting",
            events=(Tag.DEPROVISION_JOB_DEFERRED,) if job.attempts == 0 else (),
            waiting_on=_WAITING_ON[kind],
            retry_in_s=delay,
            reset_attempts=False,
        )
    else:
        decision = _fail(job, kind)
    if RevokeSessions() in failure.applied and job.sessions_revoked_at is None:
        # Sessions ended (a forced cut) although the deactivation was refused: audited once.
        decision = dataclasses.replace(
            decision, events=(Tag.DEPROVISION_SESSIONS_REVOKED, *decision.events)
        )
    base = decision.job or recorded
    return dataclasses.replace(decision, job=base, detail={**detail, **decision.detail})


def _restore_part_failed(job: Job, failure: Failure, detail: dict[str, Any]) -> Decision:
    """Refused for good (a role deleted since, a permission missing): recorded, and the other
    parts go on; the check shows the part as missing and holds the job."""
    part = job.step.removeprefix("restore_")
    error = dict(failure.error or {"kind": failure.kind})
    failed = {**job.restoration.failed, part: error}
    recorded = dataclasses.replace(
        job, restoration=dataclasses.replace(job.restoration, failed=failed)
    )
    return Decision(
        step=_next(job.action, job.step),
        events=(Tag.DEPROVISION_RESTORE_FAILED,),
        job=recorded,
        detail={**detail, "failed_part": part, "error": error},
    )


def _refused_for_conversation(job: Job, ctx: _Context) -> Decision:
    """Genesys refused the deactivation (409) for a live conversation. Unforced, it started since
    the check: the bounded wait. Forced (or a restore's deactivation), the sessions are revoked
    already: the deactivation is tried again every poll until Genesys allows it."""
    if job.forced is None and job.step == "deactivate":
        return dataclasses.replace(_wait_for_conversation(job, ctx), reset_attempts=False)
    return Decision(
        step=job.step,
        state="waiting",
        events=(Tag.DEPROVISION_CONVERSATION_WAITING,) if job.attempts == 0 else (),
        waiting_on="active-conversation",
        retry_in_s=ctx.rules.conversation_poll_s,
        reset_attempts=False,
    )


def _drain_refused(job: Job, failure: Failure, ctx: _Context) -> Decision:
    """Memberships Genesys refused to remove (memberBy=group: 400). The user is inactive
    already, so this never holds access: recorded on the job and in the audit trail, retried
    with backoff (``Rules.drain_attempts``), then left recorded while the job goes on."""
    unremoved = tuple(Unremoved(q, dict(error)) for q, error in failure.refused)
    recorded = dataclasses.replace(job, queues=dataclasses.replace(job.queues, unremoved=unremoved))
    tried = job.attempts + 1
    detail = {
        "unremoved": [{"queue": u.queue.id, "error": dict(u.error)} for u in unremoved],
        "drain_attempts": tried,
    }
    if tried < ctx.rules.drain_attempts:
        return Decision(
            step="drain",
            state="waiting",
            events=(Tag.DEPROVISION_QUEUE_REMOVE_FAILED,) if job.attempts == 0 else (),
            waiting_on="queue-drain",
            retry_in_s=backoff(ctx.rules, job.attempts),
            reset_attempts=False,
            job=recorded,
            detail=detail,
        )
    nxt = _after_drain(recorded)
    if nxt == "done":
        return _finish(
            Tag.DEPROVISION_QUEUE_DRAIN_INCOMPLETE,
            job=recorded,
            detail=detail,
            reason="queues-not-removed",
        )
    return Decision(
        step=nxt, events=(Tag.DEPROVISION_QUEUE_DRAIN_INCOMPLETE,), job=recorded, detail=detail
    )


# --- commands ------------------------------------------------------------------------------------


def command(job: Job, cmd: Command, *, now: float) -> Transition:
    """The transition an operator's (or a request's) command makes; ``NotAllowed`` if the job's
    state does not allow it."""
    handler = _COMMANDS[type(cmd)]
    return handler(job, cmd, now)


def _approve(job: Job, cmd: Command, now: float) -> Transition:
    assert isinstance(cmd, Approve)
    if job.state != "held":
        raise NotAllowed(f"job {job.id} is {job.state}, not held")
    if job.reason == "history-mismatch":
        return _accept_missing(job, cmd, now)
    if cmd.accept:
        raise NotAllowed(f"job {job.id} is held for {job.reason}, not a history mismatch")
    new = dataclasses.replace(
        job,
        state="pending",
        approved_by=cmd.actor,
        due_at=now,
        waiting_on=None,
        waiting_since=None,
        attempts=0,
        updated_at=now,
    )
    detail = {"step": job.step, "held_for": job.reason}
    return Transition(new, events=(Tag.DEPROVISION_JOB_APPROVED,), detail=detail, actor=cmd.actor)


def _accept_missing(job: Job, cmd: Approve, now: float) -> Transition:
    """Approving a held mismatch is accepting, by id, every conversation found missing: recorded
    with who and why; the delete then proceeds and its check does not look for them again. The
    before-evidence stays as captured."""
    missing = job.history.missing
    if missing is None:
        raise NotAllowed(f"job {job.id}: the missing conversations are not recorded; retry first")
    if not cmd.reason.strip():
        raise NotAllowed("accepting missing conversations needs a reason")
    unnamed = missing - cmd.accept
    if unnamed:
        raise NotAllowed(
            f"job {job.id}: accept every missing conversation by id ({len(unnamed)} not named)"
        )
    strangers = cmd.accept - (job.history.before_ids or frozenset())
    if strangers:
        raise NotAllowed(f"job {job.id}: not in the evidence: {', '.join(sorted(strangers))}")
    acceptance = Acceptance(ids=frozenset(cmd.accept), by=cmd.actor, reason=cmd.reason, at=now)
    history = dataclasses.replace(
        job.history, accepted=(*job.history.accepted, acceptance), missing=frozenset()
    )
    new = dataclasses.replace(
        job,
        state="pending",
        step="delete",
        approved_by=cmd.actor,
        history=history,
        due_at=now,
        waiting_on=None,
        reason=None,
        attempts=0,
        updated_at=now,
    )
    detail = {
        "step": job.step,
        "held_for": job.reason,
        "accepted": sorted(cmd.accept),
        "accepted_reason": cmd.reason,
        "evidence_sha256": job.history.before.sha256 if job.history.before else None,
    }
    return Transition(
        new,
        events=(Tag.DEPROVISION_HISTORY_ACCEPTED, Tag.DEPROVISION_JOB_APPROVED),
        detail=detail,
        actor=cmd.actor,
    )


def _retry(job: Job, cmd: Command, now: float) -> Transition:
    assert isinstance(cmd, Retry)
    if job.state not in ("held", "waiting", "failed", "pending"):
        raise NotAllowed(f"job {job.id} is {job.state}; only held, waiting or failed jobs retry")
    new = dataclasses.replace(
        job,
        state="pending",
        due_at=now,
        waiting_on=None,
        waiting_since=None,
        reason=None,
        finished_at=None,
        attempts=0,
        updated_at=now,
    )
    detail = {"step": job.step, "previous_reason": job.reason}
    return Transition(new, events=(Tag.DEPROVISION_JOB_RETRIED,), detail=detail, actor=cmd.actor)


def _cancel(job: Job, cmd: Command, now: float) -> Transition:
    assert isinstance(cmd, Cancel)
    if not job.open:
        raise NotAllowed(f"job {job.id} is {job.state}, not open")
    if cmd.leased:
        # Someone is running it: it stops at its next step boundary (``decide``) and records it.
        return Transition(dataclasses.replace(job, cancel_requested=True, updated_at=now))
    new = dataclasses.replace(
        job,
        cancel_requested=True,
        state="cancelled",
        reason=cmd.reason,
        waiting_on=None,  # a finished job waits on nothing
        finished_at=now,
        updated_at=now,
        claimed_by=None,
        lease_token=None,
        lease_expires_at=None,
    )
    detail = {"reason": cmd.reason, "step": job.step}
    return Transition(new, events=(Tag.DEPROVISION_JOB_CANCELLED,), detail=detail, actor=cmd.actor)


def _upgrade(job: Job, cmd: Command, now: float) -> Transition:
    if job.action != "deactivate" or not job.open:
        raise NotAllowed(f"job {job.id} is a {job.state} {job.action}, not an open deactivate")
    return Transition(dataclasses.replace(job, action="delete", updated_at=now))


def upgraded_meanwhile(old: Job, t: Transition, now: float) -> Transition:
    """The holder's transition for a step of a deactivate that a delete upgraded while the step
    ran: ``Upgrade`` is stored unfenced, and the transition was decided on the holder's copy.
    The record becomes the delete's; where the deactivate would have ended with this step, the
    delete goes on from the step after it instead (the IdP was told the delete is under way)."""
    job = dataclasses.replace(t.job, action="delete")
    if job.state != "done":
        return dataclasses.replace(t, job=job)
    step = _after_drain(job) if old.step == "drain" else _next("delete", old.step)
    job = dataclasses.replace(
        job, step=step, state="pending", due_at=now, reason=None, finished_at=None
    )
    events = tuple(e for e in t.events if e != Tag.DEPROVISION_JOB_COMPLETED)
    detail = {**t.detail, "next_step": step, "upgraded": "delete"}
    return dataclasses.replace(
        t, job=job, events=events or (Tag.DEPROVISION_JOB_STEP,), detail=detail
    )


def _cut_access(job: Job, cmd: Command, now: float) -> Transition:
    """Cut access now: the job is due at once and skips any wait for a conversation; its
    deactivate step revokes the sessions first (they end even while Genesys refuses the
    deactivation) and retries the deactivation until Genesys allows it."""
    assert isinstance(cmd, CutAccess)
    if not job.open or job.action == "reactivate":
        raise NotAllowed(f"job {job.id} is a {job.state} {job.action}; nothing to cut")
    if not cmd.reason.strip():
        raise NotAllowed("cutting access needs a reason")
    detail: dict[str, Any] = {"step": job.step, "reason": cmd.reason}
    if job.access_cut:
        detail["already_cut"] = True
        return Transition(
            job, events=(Tag.DEPROVISION_ACCESS_CUT_REQUESTED,), detail=detail, actor=cmd.actor
        )
    if job.state == "running":
        raise NotAllowed(f"job {job.id} is running a step right now; ask again in a moment")
    new = dataclasses.replace(
        job,
        forced=ForcedCut(by=cmd.actor, reason=cmd.reason, at=now),
        state="pending",
        due_at=now,
        waiting_on=None,
        attempts=0,
        updated_at=now,
    )
    return Transition(
        new, events=(Tag.DEPROVISION_ACCESS_CUT_REQUESTED,), detail=detail, actor=cmd.actor
    )


_COMMANDS: dict[type, Callable[[Job, Command, float], Transition]] = {
    Approve: _approve,
    Retry: _retry,
    Cancel: _cancel,
    Upgrade: _upgrade,
    CutAccess: _cut_access,
}


# --- a second request for the same user --------------------------------------------------------

JoinKind = Literal["join", "upgrade", "supersede", "refuse"]


def join(open_action: Action, requested: Action) -> JoinKind:
    """What a request does to the user's open job.

    ``join``: the open job already does what was asked (a deactivate joins an open delete).
    ``upgrade``: an open deactivate becomes a delete and goes on from where it is.
    ``supersede``: the latest intent wins; the open job is cancelled and a new one follows it.
    ``refuse``: a reactivate for a user being deleted (already gone as far as SCIM knows).
    """
    if open_action == requested:
        return "join"
    if open_action == "delete":
        return "join" if requested == "deactivate" else "refuse"
    if open_action == "deactivate" and requested == "delete":
        return "upgrade"
    return "supersede"
