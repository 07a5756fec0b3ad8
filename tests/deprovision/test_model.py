"""The state machine, in tables (cosmicpython ``test_sync.py`` style): no I/O at all."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scim_bridge.audit.tags import Tag
from scim_bridge.deprovision import model as m
from scim_bridge.deprovision.model import (
    AddQueue,
    Approve,
    Cancel,
    ConversationsSeen,
    CutAccess,
    DeleteUser,
    Failure,
    HistorySeen,
    NotAllowed,
    PolicyView,
    QueuesSeen,
    Ready,
    RemoveQueue,
    Retry,
    Rules,
    SetState,
    Transition,
    Upgrade,
    UserSeen,
    WriteTombstone,
    decide,
)
from scim_bridge.deprovision.record import History, Job, Memberships, QueueRef, Snapshot

RULES = Rules(
    conversation_poll_s=5, conversation_wait_max_s=100, backoff_base_s=1, backoff_cap_s=60
)
Q = frozenset({"q1", "q2"})


def job_at(action: str, step: str, **kw: Any) -> Job:
    """A job record for the tables; the old view's names map onto the record's fields."""
    if "history_before" in kw:
        kw["history"] = History(before_ids=kw.pop("history_before"))
    if "restore_queue_ids" in kw:
        refs = tuple(QueueRef(i) for i in sorted(kw.pop("restore_queue_ids")))
        kw["queues"] = Memberships(to_restore=refs)
    if kw.pop("approved", False):
        kw["approved_by"] = "admin:ops"
    if kw.pop("access_cut", False):
        kw["access_cut_at"] = 1.0
    kw.setdefault("state", "running")
    return Job(
        id="j1",
        user_id="u-1",
        action=action,  # type: ignore[arg-type]
        step=step,  # type: ignore[arg-type]
        requested_by="okta",
        created_at=0.0,
        updated_at=0.0,
        due_at=0.0,
        **kw,
    )


def tags(t: Transition) -> tuple[str, ...]:
    return tuple(t.events)


CLEAR = PolicyView(protected_by=None, user_state="active")

# (job, observation) -> (step, state, effects, events)
HAPPY_PATHS = [
    # deactivate
    (
        job_at("deactivate", "snapshot"),
        UserSeen("active", Q),
        "guard",
        "running",
        (),
        (Tag.DEPROVISION_USER_SNAPSHOT,),
    ),
    (job_at("deactivate", "guard"), CLEAR, "drain", "running", (), ()),
    (
        job_at("deactivate", "drain"),
        QueuesSeen(Q),
        "await_idle",
        "running",
        (RemoveQueue(QueueRef("q1")), RemoveQueue(QueueRef("q2"))),
        (Tag.DEPROVISION_QUEUE_REMOVED,),
    ),
    (job_at("deactivate", "drain"), QueuesSeen(frozenset()), "await_idle", "running", (), ()),
    (job_at("deactivate", "await_idle"), ConversationsSeen(False), "deactivate", "running", (), ()),
    (
        job_at("deactivate", "deactivate"),
        Ready(),
        "done",
        "done",
        (SetState("inactive"),),
        (Tag.DEPROVISION_USER_DEACTIVATED, Tag.DEPROVISION_JOB_COMPLETED),
    ),
    # delete
    (
        job_at("delete", "snapshot"),
        UserSeen("active"),
        "guard",
        "running",
        (),
        (Tag.DEPROVISION_USER_SNAPSHOT,),
    ),
    (job_at("delete", "guard"), CLEAR, "drain", "running", (), ()),
    (
        job_at("delete", "deactivate", guarded_for_delete=True),
        Ready(),
        "verify_before",
        "running",
        (SetState("inactive"),),
        (Tag.DEPROVISION_USER_DEACTIVATED,),
    ),
    (
        job_at("delete", "verify_before"),
        HistorySeen(frozenset({"c1"})),
        "delete",
        "running",
        (),
        (Tag.DEPROVISION_HISTORY_CAPTURED,),
    ),
    (job_at("delete", "delete"), Ready(), "confirm_deleted", "running", (DeleteUser(),), ()),
    (
        job_at("delete", "confirm_deleted"),
        UserSeen("deleted"),
        "verify_after",
        "running",
        (),
        (Tag.DEPROVISION_USER_DELETED,),
    ),
    (
        job_at("delete", "verify_after", history_before=frozenset({"c1"})),
        HistorySeen(frozenset({"c1", "c2"})),
        "tombstone",
        "running",
        (),
        (Tag.DEPROVISION_HISTORY_VERIFIED,),
    ),
    (
        job_at("delete", "verify_after", history_before=frozenset()),
        HistorySeen(frozenset()),
        "tombstone",
        "running",
        (),
        (Tag.DEPROVISION_HISTORY_VERIFIED,),
    ),
    (
        job_at("delete", "tombstone"),
        Ready(),
        "done",
        "done",
        (WriteTombstone(m.tombstone_row(job_at("delete", "tombstone"), 0.0)),),
        (Tag.DEPROVISION_TOMBSTONE_WRITTEN, Tag.DEPROVISION_JOB_COMPLETED),
    ),
    # reactivate
    (
        job_at("reactivate", "snapshot"),
        UserSeen("inactive"),
        "activate",
        "running",
        (),
        (Tag.DEPROVISION_USER_SNAPSHOT,),
    ),
    (
        job_at("reactivate", "activate"),
        Ready(),
        "restore_queues",
        "running",
        (SetState("active"),),
        (Tag.DEPROVISION_USER_REACTIVATED,),
    ),
    (
        job_at("reactivate", "restore_queues", restore_queue_ids=Q),
        QueuesSeen(frozenset({"q1"})),
        "done",
        "done",
        (AddQueue(QueueRef("q2")),),
        (Tag.DEPROVISION_QUEUE_RESTORED, Tag.DEPROVISION_JOB_COMPLETED),
    ),
    (
        job_at("reactivate", "restore_queues"),
        QueuesSeen(frozenset()),
        "done",
        "done",
        (),
        (Tag.DEPROVISION_JOB_COMPLETED,),
    ),
]


@pytest.mark.parametrize("case", HAPPY_PATHS)
def test_happy_paths(case: tuple[Any, ...]) -> None:
    job, seen, step, state, effects, events = case
    t = decide(job, seen, RULES)
    # A step with no tag of its own is recorded as ``deprovision:job:step``.
    assert (t.job.step, t.job.state, t.effects, tags(t)) == (
        step,
        state,
        effects,
        events or (Tag.DEPROVISION_JOB_STEP,),
    )


def test_each_sequence_walks_to_done() -> None:
    """Feeding each step the observation it expects walks every action to ``done``."""
    good: dict[str, m.Observation] = {
        "snapshot": UserSeen("active"),
        "guard": CLEAR,
        "drain": QueuesSeen(Q),
        "await_idle": ConversationsSeen(False),
        "deactivate": Ready(),
        "verify_before": HistorySeen(frozenset({"c"})),
        "delete": Ready(),
        "confirm_deleted": UserSeen("deleted"),
        "verify_after": HistorySeen(frozenset({"c"})),
        "tombstone": Ready(),
        "activate": Ready(),
        "restore_queues": QueuesSeen(frozenset()),
    }
    for action in ("deactivate", "delete", "reactivate"):
        job = job_at(action, "snapshot")
        walked = []
        while job.step != "done":
            walked.append(job.step)
            t = decide(job, good[job.step], RULES)
            assert t.job.state in ("running", "done")
            job = t.job
        assert (*walked, "done") == m.SEQUENCES[action]  # type: ignore[index]


# (job, observation) -> (step, state, reason, waiting_on)
EDGES = [
    # unknown users and users deleted elsewhere
    (job_at("deactivate", "snapshot"), UserSeen(None), "snapshot", "failed", "not-found", None),
    (
        job_at("deactivate", "snapshot"),
        UserSeen("deleted"),
        "snapshot",
        "failed",
        "not-found",
        None,
    ),
    (
        job_at("reactivate", "snapshot"),
        UserSeen("deleted"),
        "snapshot",
        "failed",
        "not-found",
        None,
    ),
    (job_at("delete", "snapshot"), UserSeen("deleted"), "done", "done", "already-deleted", None),
    # policies
    (
        job_at("delete", "guard"),
        PolicyView("*@corp.example", "active"),
        "guard",
        "cancelled",
        "protected",
        None,
    ),
    (
        job_at("deactivate", "guard"),
        PolicyView("u-1", "active"),
        "guard",
        "cancelled",
        "protected",
        None,
    ),
    (
        job_at("delete", "guard"),
        PolicyView(None, "active", deletes_in_window=3, breaker_limit=3),
        "guard",
        "held",
        "breaker",
        "approval",
    ),
    (
        job_at("delete", "guard", approved=True),
        PolicyView(None, "active", deletes_in_window=30, breaker_limit=3),
        "drain",
        "running",
        None,
        None,
    ),
    (
        job_at("delete", "guard"),
        PolicyView(None, "active", deletes_in_window=2, breaker_limit=3),
        "drain",
        "running",
        None,
        None,
    ),
    (
        job_at("deactivate", "guard"),
        PolicyView(None, "active", deletes_in_window=9, breaker_limit=3),
        "drain",
        "running",
        None,
        None,
    ),
    (
        job_at("delete", "guard", from_policy=True),
        PolicyView(None, "active"),
        "guard",
        "cancelled",
        "reactivated",
        None,
    ),
    (
        job_at("delete", "guard", from_policy=True),
        PolicyView(None, "inactive"),
        "drain",
        "running",
        None,
        None,
    ),
    (job_at("delete", "guard", dry_run=True), CLEAR, "done", "done", None, None),
    # an upgraded deactivate (delete asked for after access was cut) goes through the guard
    (job_at("delete", "deactivate"), Ready(), "guard", "running", None, None),
    (job_at("delete", "guard", access_cut=True), CLEAR, "verify_before", "running", None, None),
    # active conversations: wait (bounded), then hold
    (
        job_at("delete", "await_idle"),
        ConversationsSeen(True),
        "await_idle",
        "waiting",
        None,
        "active-conversation",
    ),
    (
        job_at("delete", "await_idle", waiting_since=950),
        ConversationsSeen(True),
        "await_idle",
        "waiting",
        None,
        "active-conversation",
    ),
    (
        job_at("delete", "await_idle", waiting_since=900),
        ConversationsSeen(True),
        "await_idle",
        "held",
        "conversation-timeout",
        "active-conversation",
    ),
    (
        job_at("delete", "deactivate"),
        Failure("active-conversation"),
        "await_idle",
        "waiting",
        None,
        "active-conversation",
    ),
    # delete not confirmed yet: retry the delete, bounded
    (
        job_at("delete", "confirm_deleted"),
        UserSeen("inactive"),
        "delete",
        "waiting",
        None,
        "delete-confirmation",
    ),
    (
        job_at("delete", "confirm_deleted", attempts=5),
        UserSeen("inactive"),
        "confirm_deleted",
        "failed",
        "delete-not-confirmed",
        None,
    ),
    (job_at("delete", "confirm_deleted"), UserSeen(None), "verify_after", "running", None, None),
    # the history check fails: restore, then hold at verify_before
    (
        job_at("delete", "verify_after", history_before=frozenset({"a", "b"})),
        HistorySeen(frozenset({"a"})),
        "restore",
        "running",
        None,
        None,
    ),
    (job_at("delete", "restore"), Ready(), "verify_before", "held", "history-mismatch", "approval"),
    # transient failures wait; permanent ones fail
    (
        job_at("delete", "drain"),
        Failure("rate-limit", retry_after_s=7),
        "drain",
        "waiting",
        None,
        "rate-limit",
    ),
    (job_at("delete", "delete"), Failure("outage"), "delete", "waiting", None, "genesys-outage"),
    (
        job_at("delete", "deactivate"),
        Failure("version-conflict"),
        "deactivate",
        "waiting",
        None,
        "version-conflict",
    ),
    (job_at("delete", "snapshot"), Failure("auth"), "snapshot", "waiting", None, "genesys-auth"),
    (job_at("delete", "drain"), Failure("permission"), "drain", "failed", "permission", None),
    (job_at("delete", "snapshot"), Failure("not-found"), "snapshot", "failed", "not-found", None),
    (job_at("delete", "delete"), Failure("invalid"), "delete", "failed", "invalid", None),
    # a superseded job stops wherever it is
    (
        job_at("deactivate", "drain", cancel_requested=True),
        QueuesSeen(Q),
        "drain",
        "cancelled",
        "superseded",
        None,
    ),
]


@pytest.mark.parametrize("case", EDGES)
def test_edges(case: tuple[Any, ...]) -> None:
    job, seen, step, state, reason, waiting_on = case
    t = decide(job, seen, RULES, now=1000)  # the conversation waits' cases are at t=1000
    assert (t.job.step, t.job.state, t.job.reason, t.job.waiting_on) == (
        step,
        state,
        reason,
        waiting_on,
    )


def test_conversation_wait_records_its_start_once() -> None:
    first = decide(job_at("delete", "await_idle"), ConversationsSeen(True), RULES, now=1000)
    assert first.job.waiting_since == 1000
    assert first.effects == ()
    assert tags(first) == (Tag.DEPROVISION_CONVERSATION_WAITING,)
    assert first.job.due_at == 1005
    again = decide(first.job, ConversationsSeen(True), RULES, now=1010)
    assert (again.effects, tags(again), again.job.waiting_since) == ((), (), 1000)
    ended = decide(again.job, ConversationsSeen(False), RULES, now=1020)
    assert (ended.job.step, ended.job.waiting_since) == ("deactivate", None)


def test_mismatch_names_the_missing_conversations() -> None:
    t = decide(
        job_at("delete", "verify_after", history_before=frozenset({"a", "b"})),
        HistorySeen(frozenset({"a", "z"})),
        RULES,
    )
    after = t.job.history.after
    assert after is not None
    assert (after.missing_count, after.missing_sample) == (1, ("b",))
    assert tags(t) == (Tag.DEPROVISION_HISTORY_MISMATCH,)
    restore = decide(job_at("delete", "restore"), Ready(), RULES)
    assert restore.effects == (SetState("inactive"),)
    assert tags(restore) == (Tag.DEPROVISION_USER_RESTORED, Tag.DEPROVISION_JOB_HELD)


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [(0, None, 1), (3, None, 8), (20, None, 60), (0, 12.5, 12.5), (4, 0, 16)],
)
def test_transient_backoff(attempts: int, retry_after: float | None, expected: float) -> None:
    t = decide(
        job_at("delete", "drain", attempts=attempts),
        Failure("outage", retry_after_s=retry_after),
        RULES,
        now=100,
    )
    assert t.job.due_at == 100 + expected
    assert t.detail["retry_in_s"] == expected
    assert t.job.attempts == attempts + 1
    assert tags(t) == ((Tag.DEPROVISION_JOB_DEFERRED,) if attempts == 0 else ())


def test_dry_run_records_the_plan_and_changes_nothing() -> None:
    t = decide(job_at("delete", "guard", dry_run=True), CLEAR, RULES)
    assert t.effects == ()
    assert t.job.plan is not None
    # The plan follows ``SEQUENCES``: every step after the guard, confirm_deleted included.
    steps = [p["step"] for p in t.job.plan]
    assert steps == [s for s in m.SEQUENCES["delete"][2:] if s != "done"]
    assert tags(t) == (Tag.DEPROVISION_JOB_PLANNED, Tag.DEPROVISION_JOB_COMPLETED)


def test_wrong_observation_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="cannot use"):
        decide(job_at("delete", "drain"), Ready(), RULES)


# open job's action, requested action -> what happens
JOINS = [
    ("deactivate", "deactivate", "join"),
    ("delete", "delete", "join"),
    ("reactivate", "reactivate", "join"),
    ("delete", "deactivate", "join"),
    ("deactivate", "delete", "upgrade"),
    ("delete", "reactivate", "refuse"),
    ("deactivate", "reactivate", "supersede"),
    ("reactivate", "deactivate", "supersede"),
    ("reactivate", "delete", "supersede"),
]


@pytest.mark.parametrize(("open_action", "requested", "expected"), JOINS)
def test_join(open_action: m.Action, requested: m.Action, expected: str) -> None:
    assert m.join(open_action, requested) == expected


# (job, observation) -> what the new record knows afterwards
SNAP_USER = {"id": "u-1", "state": "active", "version": 3, "email": "a@corp.example"}
WIN = m.HistorySeen(frozenset()).window


def _record_checks() -> list[tuple[Job, m.Observation, Any]]:
    q1 = QueueRef("q1", "Sales", True)
    return [
        (
            job_at("delete", "snapshot"),
            UserSeen("active", frozenset({"q1"}), user=SNAP_USER, queues=(q1,)),
            lambda j: j.snapshot == Snapshot(SNAP_USER, (q1,), 1000),
        ),
        (
            job_at("reactivate", "snapshot"),
            UserSeen("inactive", user=SNAP_USER, restorable=(q1,)),
            lambda j: j.queues.to_restore == (q1,),
        ),
        (
            job_at("delete", "guard"),
            CLEAR,
            lambda j: j.guarded_for_delete and j.delete_counted_at == 1000,
        ),
        (
            job_at("delete", "drain"),
            QueuesSeen(frozenset({"q1", "q9"}), (q1,)),
            lambda j: j.queues.removed == (q1, QueueRef("q9")),
        ),
        (
            job_at("delete", "deactivate", guarded_for_delete=True),
            Ready(),
            lambda j: j.access_cut_at == 1000,
        ),
        (
            job_at("delete", "verify_before"),
            HistorySeen(frozenset({"c1"}), WIN, 2, 7, {"i1": frozenset({"c1"})}),
            lambda j: (
                j.history.before is not None
                and (j.history.before.count, j.history.before.users_in_query) == (1, 7)
                and j.history.before_ids == {"c1"}
                and j.history.before_intervals == {"i1": {"c1"}}
            ),
        ),
        (
            job_at("reactivate", "restore_queues", restore_queue_ids=Q),
            QueuesSeen(frozenset({"q1"})),
            lambda j: j.queues.restored == (QueueRef("q2"),),
        ),
        (
            job_at("delete", "tombstone"),
            Ready(),
            lambda j: j.finished_at == 1000 and j.state == "done",
        ),
    ]


@pytest.mark.parametrize("case", _record_checks())
def test_what_each_step_records(case: tuple[Job, m.Observation, Any]) -> None:
    job, seen, check = case
    t = decide(job, seen, RULES, now=1000)
    assert check(t.job), t.job


def test_a_failed_removal_still_records_the_queues_removed_before_it() -> None:
    """Reactivation restores exactly what was removed, even when the drain failed half-way."""
    done = (RemoveQueue(QueueRef("q1", "Sales")),)
    t = decide(job_at("delete", "drain"), Failure("outage", applied=done), RULES, now=5)
    assert t.job.queues.removed == (QueueRef("q1", "Sales"),)
    assert (t.job.step, t.job.state, t.detail["queues_removed"]) == ("drain", "waiting", ["q1"])


# (job, command) -> (state, events, effects, what else changed) or NotAllowed
COMMANDS: list[tuple[Job, m.Command, Any]] = [
    (
        job_at("delete", "guard", state="held", reason="breaker", waiting_on="approval"),
        Approve("admin:ops"),
        ("pending", (Tag.DEPROVISION_JOB_APPROVED,), (), lambda j: j.approved_by == "admin:ops"),
    ),
    (job_at("delete", "guard", state="waiting"), Approve("admin:ops"), NotAllowed),
    (job_at("delete", "guard", state="done"), Approve("admin:ops"), NotAllowed),
    (
        job_at("delete", "guard", state="held", reason="breaker"),
        Retry("admin:ops"),
        ("pending", (Tag.DEPROVISION_JOB_RETRIED,), (), lambda j: j.approved_by is None),
    ),
    (
        job_at("delete", "delete", state="failed", reason="invalid", finished_at=9.0),
        Retry("admin:ops"),
        ("pending", (Tag.DEPROVISION_JOB_RETRIED,), (), lambda j: j.finished_at is None),
    ),
    (
        job_at("delete", "drain", state="waiting", attempts=3),
        Retry("admin:ops"),
        ("pending", (Tag.DEPROVISION_JOB_RETRIED,), (), lambda j: j.attempts == 0),
    ),
    (job_at("delete", "delete", state="done"), Retry("admin:ops"), NotAllowed),
    (job_at("delete", "delete", state="cancelled"), Retry("admin:ops"), NotAllowed),
    (
        job_at("deactivate", "drain", state="waiting"),
        Cancel("okta", leased=False),
        ("cancelled", (Tag.DEPROVISION_JOB_CANCELLED,), (), lambda j: j.reason == "superseded"),
    ),
    (
        job_at("deactivate", "drain"),
        Cancel("okta", leased=True),
        ("running", (), (), lambda j: j.cancel_requested and j.finished_at is None),
    ),
    (job_at("deactivate", "drain", state="done"), Cancel("okta", leased=False), NotAllowed),
    (
        job_at("deactivate", "await_idle", state="waiting"),
        Upgrade(),
        ("waiting", (), (), lambda j: j.action == "delete"),
    ),
    (job_at("reactivate", "activate"), Upgrade(), NotAllowed),
    (
        job_at("delete", "await_idle", state="waiting", waiting_on="active-conversation"),
        CutAccess("admin:ops", "left the company"),
        (
            "waiting",
            (Tag.DEPROVISION_USER_DEACTIVATED,),
            (SetState("inactive"),),
            lambda j: j.access_cut_at == 1000,
        ),
    ),
    (
        job_at("delete", "verify_before", state="held", access_cut=True),
        CutAccess("admin:ops"),
        ("held", (), (), lambda j: j.access_cut_at == 1.0),
    ),
    (job_at("reactivate", "activate"), CutAccess("admin:ops"), NotAllowed),
    (job_at("delete", "done", state="done"), CutAccess("admin:ops"), NotAllowed),
]


@pytest.mark.parametrize("case", COMMANDS)
def test_commands(case: tuple[Job, m.Command, Any]) -> None:
    job, cmd, expected = case
    if expected is NotAllowed:
        with pytest.raises(NotAllowed):
            m.command(job, cmd, now=1000)
        return
    state, events, effects, check = expected
    t = m.command(job, cmd, now=1000)
    assert (t.job.state, tags(t), t.effects) == (state, events, effects)
    assert check(t.job), t.job
    assert t.job.step == job.step  # commands never move a job along its sequence
    if events:
        assert t.actor == getattr(cmd, "actor", None)


def _every_transition() -> list[Transition]:
    made = [decide(job, seen, RULES, now=1000) for job, seen, *_ in HAPPY_PATHS + EDGES]
    made += [decide(job, seen, RULES, now=1000) for job, seen, _ in _record_checks()]
    for job, cmd, expected in COMMANDS:
        if expected is not NotAllowed:
            made.append(m.command(job, cmd, now=1000))
    return made


def test_every_event_the_model_emits_is_an_audit_tag() -> None:
    """One source for tags: the model emits ``audit.tags.Tag`` members, never bare strings."""
    emitted = [tag for t in _every_transition() for tag in t.events]
    assert emitted
    assert all(type(tag) is Tag for tag in emitted), [t for t in emitted if type(t) is not Tag]
    assert {t.value for t in emitted} <= {t.value for t in Tag if t.name.startswith("DEPROVISION")}


def test_the_transition_table_covers_every_step_and_command() -> None:
    steps = {s for seq in m.SEQUENCES.values() for s in seq if s != "done"} | {"restore"}
    assert set(m._HANDLERS) == steps
    assert set(m._COMMANDS) == {Approve, Retry, Cancel, Upgrade, CutAccess}


def test_a_drain_that_died_before_recording_records_what_it_had_removed() -> None:
    """Killed after its DELETE calls and before its commit, the drain is run again and finds the
    queues gone: the snapshot's memberships are recorded as removed, so reactivation restores
    them (found by the crash test's kill at ``drain``)."""
    q1, q2 = QueueRef("q1", "Sales"), QueueRef("q2", "Support")
    job = dataclasses.replace(job_at("deactivate", "drain"), snapshot=Snapshot({}, (q1, q2), 1.0))
    again = decide(job, QueuesSeen(frozenset({"q2"}), (q2,)), RULES)
    assert again.effects == (RemoveQueue(q2),)
    assert set(again.job.queues.removed) == {q1, q2}
    none_left = decide(job, QueuesSeen(frozenset()), RULES)
    assert (none_left.effects, set(none_left.job.queues.removed)) == ((), {q1, q2})
    assert tags(none_left) == (Tag.DEPROVISION_QUEUE_REMOVED,)
