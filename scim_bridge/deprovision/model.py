"""The deprovisioning state machine: (job, what was observed) -> what to do next.

Functional core (STYLE.md 4; cosmicpython ``sync.py:determine_actions``): no Flask, SDK, clock
or I/O. The runner reads Genesys (or the database) for the job's current step, hands the
observation here, executes the returned ``effects`` and records the returned step and state.
When an effect fails, the runner hands the failure back here (``Failure``) and records what
this module says about it. Times arrive as plain numbers; nothing here reads a clock.

A job's ``step`` is always the next thing to do, so a process that dies mid-step leaves the
job at that step and whoever resumes it re-reads Genesys and does it again: every effect is
idempotent against Genesys (removing an absent member, setting a state already held, deleting a
deleted user all succeed quietly).

    deactivate: snapshot > guard > drain > await_idle > deactivate > done
    delete:     snapshot > guard > drain > await_idle > deactivate > verify_before > delete
                > confirm_deleted > verify_after > tombstone > done
                                                   \\ mismatch > restore > held
    reactivate: snapshot > activate > restore_queues > done
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Action = Literal["deactivate", "reactivate", "delete"]
JobState = Literal["pending", "running", "waiting", "held", "done", "failed", "cancelled"]
Step = Literal[
    "snapshot",
    "guard",
    "drain",
    "await_idle",
    "deactivate",
    "verify_before",
    "delete",
    "confirm_deleted",
    "verify_after",
    "restore",
    "tombstone",
    "activate",
    "restore_queues",
    "done",
]

OPEN_STATES: tuple[JobState, ...] = ("pending", "running", "waiting", "held")
FINISHED_STATES: tuple[JobState, ...] = ("done", "failed", "cancelled")
HISTORY_STEPS: tuple[Step, ...] = ("verify_before", "verify_after")

SEQUENCES: dict[Action, tuple[Step, ...]] = {
    "deactivate": ("snapshot", "guard", "drain", "await_idle", "deactivate", "done"),
    "delete": (
        "snapshot",
        "guard",
        "drain",
        "await_idle",
        "deactivate",
        "verify_before",
        "delete",
        "confirm_deleted",
        "verify_after",
        "tombstone",
        "done",
    ),
    "reactivate": ("snapshot", "activate", "restore_queues", "done"),
}

# Audit tags, by value (the model does not import the audit package: it pulls in the store).
SNAPSHOT = "deprovision:user:snapshot"
PROTECTED = "deprovision:user:protected"
PLANNED = "deprovision:job:planned"
BREAKER_TRIPPED = "deprovision:breaker:tripped"
QUEUE_REMOVED = "deprovision:queue:removed"
QUEUE_RESTORED = "deprovision:queue:restored"
CONVERSATION_WAITING = "deprovision:conversation:waiting"
DEACTIVATED = "deprovision:user:deactivated"
REACTIVATED = "deprovision:user:reactivated"
HISTORY_CAPTURED = "deprovision:history:captured"
DELETED = "deprovision:user:deleted"
HISTORY_VERIFIED = "deprovision:history:verified"
HISTORY_MISMATCH = "deprovision:history:mismatch"
RESTORED = "deprovision:user:restored"
TOMBSTONE = "deprovision:tombstone:written"
JOB_COMPLETED = "deprovision:job:completed"
JOB_FAILED = "deprovision:job:failed"
JOB_HELD = "deprovision:job:held"
JOB_DEFERRED = "deprovision:job:deferred"
JOB_CANCELLED = "deprovision:job:cancelled"


# --- what the model knows about a job ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rules:
    """Timings the model applies; the runner builds them from settings (tests shorten them)."""

    conversation_poll_s: float = 30.0
    conversation_wait_max_s: float = 8 * 3600.0
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0
    confirm_delete_retries: int = 5


@dataclasses.dataclass(frozen=True)
class Job:
    action: Action
    step: Step
    attempts: int = 0  # consecutive failed attempts at this step
    dry_run: bool = False
    approved: bool = False  # an operator approved it past the delete breaker
    guarded_for_delete: bool = False  # the guard ran (and passed) for a delete
    access_cut: bool = False  # the deactivate step succeeded
    from_policy: bool = False  # scheduled by DELETE_INACTIVE_AFTER, not asked for by an IdP
    cancel_requested: bool = False
    waiting_since: float | None = None  # when the wait for an active conversation began
    history_before: frozenset[str] | None = None
    restore_queue_ids: frozenset[str] = frozenset()


# --- observations ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UserSeen:
    """The user as read now (``state`` None: Genesys does not know the id, even as deleted)."""

    state: str | None
    queue_ids: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class PolicyView:
    """What the guard needs: a protecting pattern that matched, the breaker's count and limit."""

    protected_by: str | None
    user_state: str | None
    deletes_in_window: int = 0
    breaker_limit: int | None = None


@dataclasses.dataclass(frozen=True)
class QueuesSeen:
    queue_ids: frozenset[str]


@dataclasses.dataclass(frozen=True)
class ConversationsSeen:
    busy: bool
    now: float


@dataclasses.dataclass(frozen=True)
class HistorySeen:
    conversation_ids: frozenset[str]


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
    """Reading or acting failed. ``now`` is needed for the conversation wait's bound."""

    kind: ErrorKind
    retry_after_s: float | None = None
    now: float = 0.0


Observation = UserSeen | PolicyView | QueuesSeen | ConversationsSeen | HistorySeen | Ready | Failure


# --- effects -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecordSnapshot:
    """Keep the user's profile and queue memberships on the job (restores and tombstones)."""


@dataclasses.dataclass(frozen=True)
class RecordPlan:
    """DRY_RUN: keep the list of what would have been done; change nothing."""


@dataclasses.dataclass(frozen=True)
class CountDelete:
    """The job passed the guard as a delete: it counts against the delete breaker from now."""


@dataclasses.dataclass(frozen=True)
class RemoveQueues:
    queue_ids: frozenset[str]


@dataclasses.dataclass(frozen=True)
class AddQueues:
    queue_ids: frozenset[str]


@dataclasses.dataclass(frozen=True)
class SetState:
    state: Literal["active", "inactive"]


@dataclasses.dataclass(frozen=True)
class DeleteUser:
    pass


@dataclasses.dataclass(frozen=True)
class RecordEvidence:
    phase: Literal["before", "after"]
    missing: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class StartWaiting:
    """Remember when the wait for an active conversation began (its bound counts from here)."""

    since: float


@dataclasses.dataclass(frozen=True)
class StopWaiting:
    pass


@dataclasses.dataclass(frozen=True)
class WriteTombstone:
    pass


Effect = (
    RecordSnapshot
    | RecordPlan
    | CountDelete
    | RemoveQueues
    | AddQueues
    | SetState
    | DeleteUser
    | RecordEvidence
    | StartWaiting
    | StopWaiting
    | WriteTombstone
)


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do and where the job stands afterwards.

    ``effects`` run in order; only when all succeed are ``step``/``state`` recorded with
    ``events`` (audit tags). ``retry_in_s`` is set with ``state="waiting"``. ``reason`` names
    why a job is held, failed or cancelled. ``access_cut`` is set when the effects cut access.
    """

    step: Step
    state: JobState = "running"
    effects: tuple[Effect, ...] = ()
    events: tuple[str, ...] = ()
    waiting_on: str | None = None
    retry_in_s: float | None = None
    reason: str | None = None
    access_cut: bool = False
    reset_attempts: bool = True


def _next(action: Action, step: Step) -> Step:
    sequence = SEQUENCES[action]
    return sequence[sequence.index(step) + 1]


def _finish(step: Step = "done", *events: str, effects: tuple[Effect, ...] = ()) -> Decision:
    return Decision(step=step, state="done", effects=effects, events=(*events, JOB_COMPLETED))


def _fail(job: Job, reason: str) -> Decision:
    return Decision(step=job.step, state="failed", events=(JOB_FAILED,), reason=reason)


def backoff(rules: Rules, attempts: int) -> float:
    """Exponential, capped; the runner adds jitter."""
    return float(min(rules.backoff_cap_s, rules.backoff_base_s * 2 ** min(attempts, 16)))


# --- the machine -------------------------------------------------------------------------------


def decide(job: Job, seen: Observation, rules: Rules | None = None) -> Decision:
    """The next decision for ``job`` at ``job.step`` given what was just observed."""
    rules = rules or Rules()
    if job.cancel_requested:
        return Decision(
            step=job.step, state="cancelled", events=(JOB_CANCELLED,), reason="superseded"
        )
    if isinstance(seen, Failure):
        return _on_failure(job, seen, rules)
    handler = _HANDLERS.get(job.step)
    if handler is None:
        raise ValueError(f"no step {job.step!r} to run for a {job.action} job")
    return handler(job, seen, rules)


def _unexpected(job: Job, seen: Observation) -> ValueError:
    return ValueError(f"step {job.step} cannot use {type(seen).__name__}")


def _snapshot(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, UserSeen):
        raise _unexpected(job, seen)
    if seen.state is None:
        return _fail(job, "not-found")
    if seen.state == "deleted":
        if job.action == "delete":
            # Deleted already (outside the bridge): nothing to do, nothing this job can prove.
            return Decision(
                step="done", state="done", events=(JOB_COMPLETED,), reason="already-deleted"
            )
        return _fail(job, "not-found")
    return Decision(
        step=_next(job.action, "snapshot"), effects=(RecordSnapshot(),), events=(SNAPSHOT,)
    )


def _guard(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, PolicyView):
        raise _unexpected(job, seen)
    if seen.protected_by is not None:
        return Decision(step=job.step, state="cancelled", events=(PROTECTED,), reason="protected")
    if job.from_policy and seen.user_state != "inactive":
        # DELETE_INACTIVE_AFTER applies to users the bridge deactivated and nobody brought back.
        return Decision(
            step=job.step, state="cancelled", events=(JOB_CANCELLED,), reason="reactivated"
        )
    if job.dry_run:
        return _finish("done", PLANNED, effects=(RecordPlan(),))
    effects: tuple[Effect, ...] = ()
    if job.action == "delete":
        limit = seen.breaker_limit
        if not job.approved and limit is not None and seen.deletes_in_window >= limit:
            return Decision(
                step=job.step,
                state="held",
                events=(BREAKER_TRIPPED, JOB_HELD),
                waiting_on="approval",
                reason="breaker",
            )
        effects = (CountDelete(),)
    # A deactivate upgraded to a delete after its guard already cut access: go on to verify.
    step: Step = "verify_before" if job.action == "delete" and job.access_cut else "drain"
    return Decision(step=step, effects=effects)


def _drain(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, QueuesSeen):
        raise _unexpected(job, seen)
    if not seen.queue_ids:
        return Decision(step="await_idle")
    return Decision(
        step="await_idle", effects=(RemoveQueues(seen.queue_ids),), events=(QUEUE_REMOVED,)
    )


def _wait_for_conversation(job: Job, now: float, rules: Rules) -> Decision:
    started = job.waiting_since if job.waiting_since is not None else now
    if now - started >= rules.conversation_wait_max_s:
        return Decision(
            step="await_idle",
            state="held",
            events=(JOB_HELD,),
            waiting_on="active-conversation",
            reason="conversation-timeout",
        )
    first = job.waiting_since is None
    return Decision(
        step="await_idle",
        state="waiting",
        effects=(StartWaiting(now),) if first else (),
        events=(CONVERSATION_WAITING,) if first else (),
        waiting_on="active-conversation",
        retry_in_s=rules.conversation_poll_s,
        reset_attempts=False,
    )


def _await_idle(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, ConversationsSeen):
        raise _unexpected(job, seen)
    if seen.busy:
        return _wait_for_conversation(job, seen.now, rules)
    effects: tuple[Effect, ...] = (StopWaiting(),) if job.waiting_since is not None else ()
    return Decision(step="deactivate", effects=effects)


def _deactivate(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    effects: tuple[Effect, ...] = (SetState("inactive"),)
    if job.action == "deactivate":
        return dataclasses.replace(_finish("done", DEACTIVATED, effects=effects), access_cut=True)
    # An upgraded deactivate has not been through the delete guard (breaker) yet.
    step: Step = "verify_before" if job.guarded_for_delete else "guard"
    return Decision(step=step, effects=effects, events=(DEACTIVATED,), access_cut=True)


def _verify_before(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, HistorySeen):
        raise _unexpected(job, seen)
    return Decision(step="delete", effects=(RecordEvidence("before"),), events=(HISTORY_CAPTURED,))


def _delete(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    return Decision(step="confirm_deleted", effects=(DeleteUser(),))


def _confirm_deleted(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, UserSeen):
        raise _unexpected(job, seen)
    if seen.state in ("deleted", None):
        # None: gone even from ?state=deleted; the history check still says what survived.
        return Decision(step="verify_after", events=(DELETED,))
    if job.attempts >= rules.confirm_delete_retries:
        return _fail(job, "delete-not-confirmed")
    return Decision(
        step="delete",
        state="waiting",
        waiting_on="delete-confirmation",
        retry_in_s=backoff(rules, job.attempts),
        reset_attempts=False,
    )


def _verify_after(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, HistorySeen):
        raise _unexpected(job, seen)
    before = job.history_before if job.history_before is not None else frozenset()
    missing = before - seen.conversation_ids
    if missing:
        return Decision(
            step="restore",
            effects=(RecordEvidence("after", missing),),
            events=(HISTORY_MISMATCH,),
        )
    return Decision(
        step="tombstone", effects=(RecordEvidence("after"),), events=(HISTORY_VERIFIED,)
    )


def _restore(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    # Held at verify_before: an approve or retry re-captures the evidence and tries again;
    # there is no path that deletes without the proof.
    return Decision(
        step="verify_before",
        state="held",
        effects=(SetState("inactive"),),
        events=(RESTORED, JOB_HELD),
        waiting_on="approval",
        reason="history-mismatch",
    )


def _tombstone(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    return _finish("done", TOMBSTONE, effects=(WriteTombstone(),))


def _activate(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, Ready):
        raise _unexpected(job, seen)
    return Decision(step="restore_queues", effects=(SetState("active"),), events=(REACTIVATED,))


def _restore_queues(job: Job, seen: Observation, rules: Rules) -> Decision:
    if not isinstance(seen, QueuesSeen):
        raise _unexpected(job, seen)
    missing = job.restore_queue_ids - seen.queue_ids
    if not missing:
        return _finish()
    return _finish("done", QUEUE_RESTORED, effects=(AddQueues(missing),))


_HANDLERS = {
    "snapshot": _snapshot,
    "guard": _guard,
    "drain": _drain,
    "await_idle": _await_idle,
    "deactivate": _deactivate,
    "verify_before": _verify_before,
    "delete": _delete,
    "confirm_deleted": _confirm_deleted,
    "verify_after": _verify_after,
    "restore": _restore,
    "tombstone": _tombstone,
    "activate": _activate,
    "restore_queues": _restore_queues,
}

_WAITING_ON: dict[ErrorKind, str] = {
    "rate-limit": "rate-limit",
    "outage": "genesys-outage",
    "version-conflict": "version-conflict",
    "auth": "genesys-auth",
}


def _on_failure(job: Job, failure: Failure, rules: Rules) -> Decision:
    kind = failure.kind
    if kind == "active-conversation":
        # Genesys refused the deactivation because a conversation started since the check.
        return dataclasses.replace(
            _wait_for_conversation(job, failure.now, rules), reset_attempts=False
        )
    if kind in _WAITING_ON:
        # Transient: never a failure (DESIGN.md: a 429 is never turned into a failure).
        delay = failure.retry_after_s
        if delay is None or delay <= 0:
            delay = backoff(rules, job.attempts)
        return Decision(
            step=job.step,
            state="waiting",
            events=(JOB_DEFERRED,) if job.attempts == 0 else (),
            waiting_on=_WAITING_ON[kind],
            retry_in_s=delay,
            reset_attempts=False,
        )
    return _fail(job, kind)


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


def is_access_cut_step(action: Action, step: Step) -> bool:
    """Whether a job at ``step`` has already been through ``deactivate``."""
    sequence = SEQUENCES[action]
    return "deactivate" in sequence and sequence.index(step) > sequence.index("deactivate")
