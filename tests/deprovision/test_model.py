"""The state machine, in tables (cosmicpython ``test_sync.py`` style): no I/O at all."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scim_bridge.deprovision import model as m
from scim_bridge.deprovision.model import (
    AddQueues,
    ConversationsSeen,
    CountDelete,
    DeleteUser,
    Failure,
    HistorySeen,
    Job,
    PolicyView,
    QueuesSeen,
    Ready,
    RecordEvidence,
    RecordPlan,
    RecordSnapshot,
    RemoveQueues,
    Rules,
    SetState,
    StartWaiting,
    StopWaiting,
    UserSeen,
    WriteTombstone,
    decide,
)

RULES = Rules(
    conversation_poll_s=5, conversation_wait_max_s=100, backoff_base_s=1, backoff_cap_s=60
)
Q = frozenset({"q1", "q2"})
CLEAR = PolicyView(protected_by=None, user_state="active")

# (job, observation) -> (step, state, effects, events)
HAPPY_PATHS = [
    # deactivate
    (
        Job("deactivate", "snapshot"),
        UserSeen("active", Q),
        "guard",
        "running",
        (RecordSnapshot(),),
        (m.SNAPSHOT,),
    ),
    (Job("deactivate", "guard"), CLEAR, "drain", "running", (), ()),
    (
        Job("deactivate", "drain"),
        QueuesSeen(Q),
        "await_idle",
        "running",
        (RemoveQueues(Q),),
        (m.QUEUE_REMOVED,),
    ),
    (Job("deactivate", "drain"), QueuesSeen(frozenset()), "await_idle", "running", (), ()),
    (Job("deactivate", "await_idle"), ConversationsSeen(False, 0), "deactivate", "running", (), ()),
    (
        Job("deactivate", "deactivate"),
        Ready(),
        "done",
        "done",
        (SetState("inactive"),),
        (m.DEACTIVATED, m.JOB_COMPLETED),
    ),
    # delete
    (
        Job("delete", "snapshot"),
        UserSeen("active"),
        "guard",
        "running",
        (RecordSnapshot(),),
        (m.SNAPSHOT,),
    ),
    (Job("delete", "guard"), CLEAR, "drain", "running", (CountDelete(),), ()),
    (
        Job("delete", "deactivate", guarded_for_delete=True),
        Ready(),
        "verify_before",
        "running",
        (SetState("inactive"),),
        (m.DEACTIVATED,),
    ),
    (
        Job("delete", "verify_before"),
        HistorySeen(frozenset({"c1"})),
        "delete",
        "running",
        (RecordEvidence("before"),),
        (m.HISTORY_CAPTURED,),
    ),
    (Job("delete", "delete"), Ready(), "confirm_deleted", "running", (DeleteUser(),), ()),
    (
        Job("delete", "confirm_deleted"),
        UserSeen("deleted"),
        "verify_after",
        "running",
        (),
        (m.DELETED,),
    ),
    (
        Job("delete", "verify_after", history_before=frozenset({"c1"})),
        HistorySeen(frozenset({"c1", "c2"})),
        "tombstone",
        "running",
        (RecordEvidence("after"),),
        (m.HISTORY_VERIFIED,),
    ),
    (
        Job("delete", "verify_after", history_before=frozenset()),
        HistorySeen(frozenset()),
        "tombstone",
        "running",
        (RecordEvidence("after"),),
        (m.HISTORY_VERIFIED,),
    ),
    (
        Job("delete", "tombstone"),
        Ready(),
        "done",
        "done",
        (WriteTombstone(),),
        (m.TOMBSTONE, m.JOB_COMPLETED),
    ),
    # reactivate
    (
        Job("reactivate", "snapshot"),
        UserSeen("inactive"),
        "activate",
        "running",
        (RecordSnapshot(),),
        (m.SNAPSHOT,),
    ),
    (
        Job("reactivate", "activate"),
        Ready(),
        "restore_queues",
        "running",
        (SetState("active"),),
        (m.REACTIVATED,),
    ),
    (
        Job("reactivate", "restore_queues", restore_queue_ids=Q),
        QueuesSeen(frozenset({"q1"})),
        "done",
        "done",
        (AddQueues(frozenset({"q2"})),),
        (m.QUEUE_RESTORED, m.JOB_COMPLETED),
    ),
    (
        Job("reactivate", "restore_queues"),
        QueuesSeen(frozenset()),
        "done",
        "done",
        (),
        (m.JOB_COMPLETED,),
    ),
]


@pytest.mark.parametrize("case", HAPPY_PATHS)
def test_happy_paths(case: tuple[Any, ...]) -> None:
    job, seen, step, state, effects, events = case
    decision = decide(job, seen, RULES)
    assert (decision.step, decision.state, decision.effects, decision.events) == (
        step,
        state,
        effects,
        events,
    )


def test_each_sequence_walks_to_done() -> None:
    """Feeding each step the observation it expects walks every action to ``done``."""
    good: dict[str, m.Observation] = {
        "snapshot": UserSeen("active"),
        "guard": CLEAR,
        "drain": QueuesSeen(Q),
        "await_idle": ConversationsSeen(False, 0),
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
        job = Job(action, "snapshot")  # type: ignore[arg-type]
        walked = []
        while job.step != "done":
            walked.append(job.step)
            d = decide(job, good[job.step], RULES)
            assert d.state in ("running", "done")
            job = dataclasses.replace(
                job,
                step=d.step,
                guarded_for_delete=job.guarded_for_delete or CountDelete() in d.effects,
                access_cut=job.access_cut or d.access_cut,
                history_before=frozenset({"c"}),
            )
        assert (*walked, "done") == m.SEQUENCES[action]  # type: ignore[index]


# (job, observation) -> (step, state, reason, waiting_on)
EDGES = [
    # unknown users and users deleted elsewhere
    (Job("deactivate", "snapshot"), UserSeen(None), "snapshot", "failed", "not-found", None),
    (Job("deactivate", "snapshot"), UserSeen("deleted"), "snapshot", "failed", "not-found", None),
    (Job("reactivate", "snapshot"), UserSeen("deleted"), "snapshot", "failed", "not-found", None),
    (Job("delete", "snapshot"), UserSeen("deleted"), "done", "done", "already-deleted", None),
    # policies
    (
        Job("delete", "guard"),
        PolicyView("*@corp.example", "active"),
        "guard",
        "cancelled",
        "protected",
        None,
    ),
    (
        Job("deactivate", "guard"),
        PolicyView("u-1", "active"),
        "guard",
        "cancelled",
        "protected",
        None,
    ),
    (
        Job("delete", "guard"),
        PolicyView(None, "active", deletes_in_window=3, breaker_limit=3),
        "guard",
        "held",
        "breaker",
        "approval",
    ),
    (
        Job("delete", "guard", approved=True),
        PolicyView(None, "active", deletes_in_window=30, breaker_limit=3),
        "drain",
        "running",
        None,
        None,
    ),
    (
        Job("delete", "guard"),
        PolicyView(None, "active", deletes_in_window=2, breaker_limit=3),
        "drain",
        "running",
        None,
        None,
    ),
    (
        Job("deactivate", "guard"),
        PolicyView(None, "active", deletes_in_window=9, breaker_limit=3),
        "drain",
        "running",
        None,
        None,
    ),
    (
        Job("delete", "guard", from_policy=True),
        PolicyView(None, "active"),
        "guard",
        "cancelled",
        "reactivated",
        None,
    ),
    (
        Job("delete", "guard", from_policy=True),
        PolicyView(None, "inactive"),
        "drain",
        "running",
        None,
        None,
    ),
    (Job("delete", "guard", dry_run=True), CLEAR, "done", "done", None, None),
    # an upgraded deactivate (delete asked for after access was cut) goes through the guard
    (Job("delete", "deactivate"), Ready(), "guard", "running", None, None),
    (Job("delete", "guard", access_cut=True), CLEAR, "verify_before", "running", None, None),
    # active conversations: wait (bounded), then hold
    (
        Job("delete", "await_idle"),
        ConversationsSeen(True, 1000),
        "await_idle",
        "waiting",
        None,
        "active-conversation",
    ),
    (
        Job("delete", "await_idle", waiting_since=950),
        ConversationsSeen(True, 1000),
        "await_idle",
        "waiting",
        None,
        "active-conversation",
    ),
    (
        Job("delete", "await_idle", waiting_since=900),
        ConversationsSeen(True, 1000),
        "await_idle",
        "held",
        "conversation-timeout",
        "active-conversation",
    ),
    (
        Job("delete", "deactivate"),
        Failure("active-conversation", now=5),
        "await_idle",
        "waiting",
        None,
        "active-conversation",
    ),
    # delete not confirmed yet: retry the delete, bounded
    (
        Job("delete", "confirm_deleted"),
        UserSeen("inactive"),
        "delete",
        "waiting",
        None,
        "delete-confirmation",
    ),
    (
        Job("delete", "confirm_deleted", attempts=5),
        UserSeen("inactive"),
        "confirm_deleted",
        "failed",
        "delete-not-confirmed",
        None,
    ),
    (Job("delete", "confirm_deleted"), UserSeen(None), "verify_after", "running", None, None),
    # the history check fails: restore, then hold at verify_before
    (
        Job("delete", "verify_after", history_before=frozenset({"a", "b"})),
        HistorySeen(frozenset({"a"})),
        "restore",
        "running",
        None,
        None,
    ),
    (Job("delete", "restore"), Ready(), "verify_before", "held", "history-mismatch", "approval"),
    # transient failures wait; permanent ones fail
    (
        Job("delete", "drain"),
        Failure("rate-limit", retry_after_s=7),
        "drain",
        "waiting",
        None,
        "rate-limit",
    ),
    (Job("delete", "delete"), Failure("outage"), "delete", "waiting", None, "genesys-outage"),
    (
        Job("delete", "deactivate"),
        Failure("version-conflict"),
        "deactivate",
        "waiting",
        None,
        "version-conflict",
    ),
    (Job("delete", "snapshot"), Failure("auth"), "snapshot", "waiting", None, "genesys-auth"),
    (Job("delete", "drain"), Failure("permission"), "drain", "failed", "permission", None),
    (Job("delete", "snapshot"), Failure("not-found"), "snapshot", "failed", "not-found", None),
    (Job("delete", "delete"), Failure("invalid"), "delete", "failed", "invalid", None),
    # a superseded job stops wherever it is
    (
        Job("deactivate", "drain", cancel_requested=True),
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
    d = decide(job, seen, RULES)
    assert (d.step, d.state, d.reason, d.waiting_on) == (step, state, reason, waiting_on)


def test_conversation_wait_records_its_start_once() -> None:
    first = decide(Job("delete", "await_idle"), ConversationsSeen(True, 1000), RULES)
    assert first.effects == (StartWaiting(1000),)
    assert first.events == (m.CONVERSATION_WAITING,)
    assert first.retry_in_s == 5
    again = decide(
        Job("delete", "await_idle", waiting_since=1000), ConversationsSeen(True, 1010), RULES
    )
    assert (again.effects, again.events) == ((), ())
    ended = decide(
        Job("delete", "await_idle", waiting_since=1000), ConversationsSeen(False, 1020), RULES
    )
    assert (ended.step, ended.effects) == ("deactivate", (StopWaiting(),))


def test_mismatch_names_the_missing_conversations() -> None:
    d = decide(
        Job("delete", "verify_after", history_before=frozenset({"a", "b"})),
        HistorySeen(frozenset({"a", "z"})),
        RULES,
    )
    assert d.effects == (RecordEvidence("after", frozenset({"b"})),)
    assert d.events == (m.HISTORY_MISMATCH,)
    restore = decide(Job("delete", "restore"), Ready(), RULES)
    assert restore.effects == (SetState("inactive"),)
    assert restore.events == (m.RESTORED, m.JOB_HELD)


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [(0, None, 1), (3, None, 8), (20, None, 60), (0, 12.5, 12.5), (4, 0, 16)],
)
def test_transient_backoff(attempts: int, retry_after: float | None, expected: float) -> None:
    d = decide(
        Job("delete", "drain", attempts=attempts),
        Failure("outage", retry_after_s=retry_after),
        RULES,
    )
    assert d.retry_in_s == expected
    assert d.reset_attempts is False
    assert d.events == ((m.JOB_DEFERRED,) if attempts == 0 else ())


def test_dry_run_records_the_plan_and_changes_nothing() -> None:
    d = decide(Job("delete", "guard", dry_run=True), CLEAR, RULES)
    assert d.effects == (RecordPlan(),)
    assert d.events == (m.PLANNED, m.JOB_COMPLETED)


def test_wrong_observation_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="cannot use"):
        decide(Job("delete", "drain"), Ready(), RULES)


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
