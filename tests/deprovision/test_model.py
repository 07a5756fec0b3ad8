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
    AssignLanguages,
    AssignSkills,
    Cancel,
    ConversationsSeen,
    CutAccess,
    DeleteUser,
    Failure,
    FootprintSeen,
    GrantRoles,
    HistorySeen,
    JoinQueues,
    MoveDivision,
    NotAllowed,
    PolicyView,
    QueuesSeen,
    Ready,
    RemoveQueue,
    Retry,
    RevokeSessions,
    Rules,
    SetState,
    Transition,
    Undelete,
    Upgrade,
    UserSeen,
    WriteTombstone,
    decide,
)
from scim_bridge.deprovision.record import (
    Acceptance,
    Evidence,
    Footprint,
    ForcedCut,
    Grant,
    History,
    Job,
    Level,
    Memberships,
    QueueRef,
    Restoration,
    Snapshot,
    Unremoved,
)

RULES = Rules(
    conversation_poll_s=5, conversation_wait_max_s=100, backoff_base_s=1, backoff_cap_s=60
)
Q = frozenset({"q1", "q2"})
# A footprint as a deactivation's snapshot recorded it (issue 12): roles in two divisions.
TARGET = Footprint(
    division_id="div-sales",
    grants=(Grant("role-agent", "div-sales"), Grant("role-sup", "div-support")),
    skills=(Level("skill-billing", 4.5),),
    languages=(Level("lang-en", 5.0), Level("lang-es", 3.0)),
)
TARGETED = Restoration(target=TARGET, source_job_id="j0")
IN_HOME = Snapshot({"division_id": "div-home"})
IN_SALES = Snapshot({"division_id": "div-sales"})


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


FORCED = ForcedCut("admin:ops", "left the company", 990.0)
HELD_HISTORY = History(
    before=Evidence(2, "ab" * 32, ("a", "b"), m.HistorySeen(frozenset()).window, 1, 1),
    before_ids=frozenset({"a", "b"}),
    missing=frozenset({"b"}),
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
    (job_at("deactivate", "guard"), CLEAR, "await_idle", "running", (), ()),
    (job_at("deactivate", "await_idle"), ConversationsSeen(False), "deactivate", "running", (), ()),
    # access first (issue 10): the user inactive and every session ended, then the drain
    (
        job_at("deactivate", "deactivate"),
        Ready(),
        "drain",
        "running",
        (SetState("inactive"), RevokeSessions()),
        (Tag.DEPROVISION_USER_DEACTIVATED, Tag.DEPROVISION_SESSIONS_REVOKED),
    ),
    (
        job_at("deactivate", "drain"),
        QueuesSeen(Q),
        "done",
        "done",
        (RemoveQueue(QueueRef("q1")), RemoveQueue(QueueRef("q2"))),
        (Tag.DEPROVISION_QUEUE_REMOVED, Tag.DEPROVISION_JOB_COMPLETED),
    ),
    (
        job_at("deactivate", "drain"),
        QueuesSeen(frozenset()),
        "done",
        "done",
        (),
        (Tag.DEPROVISION_JOB_COMPLETED,),
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
    (job_at("delete", "guard"), CLEAR, "await_idle", "running", (), ()),
    (
        job_at("delete", "deactivate"),
        Ready(),
        "breaker",
        "running",
        (SetState("inactive"), RevokeSessions()),
        (Tag.DEPROVISION_USER_DEACTIVATED, Tag.DEPROVISION_SESSIONS_REVOKED),
    ),
    (job_at("delete", "breaker", access_cut=True), CLEAR, "drain", "running", (), ()),
    (
        job_at("delete", "drain", guarded_for_delete=True, access_cut=True),
        QueuesSeen(Q),
        "verify_before",
        "running",
        (RemoveQueue(QueueRef("q1")), RemoveQueue(QueueRef("q2"))),
        (Tag.DEPROVISION_QUEUE_REMOVED,),
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
        "restore_division",
        "running",
        (SetState("active"),),
        (Tag.DEPROVISION_USER_REACTIVATED,),
    ),
    # the footprint (issue 12): each part its own step, then the check against the snapshot
    (
        job_at("reactivate", "restore_division", restoration=TARGETED, snapshot=IN_HOME),
        Ready(),
        "restore_roles",
        "running",
        (MoveDivision("div-sales"),),
        (Tag.DEPROVISION_DIVISION_RESTORED,),
    ),
    (
        job_at("reactivate", "restore_division", restoration=TARGETED, snapshot=IN_SALES),
        Ready(),
        "restore_roles",
        "running",
        (),  # the reactivation's own read found the user there: nothing to send
        (),
    ),
    (
        job_at("reactivate", "restore_roles", restoration=TARGETED),
        Ready(),
        "restore_skills",
        "running",
        (GrantRoles(TARGET.grants),),
        (Tag.DEPROVISION_ROLES_RESTORED,),
    ),
    (
        job_at("reactivate", "restore_skills", restoration=TARGETED),
        Ready(),
        "restore_languages",
        "running",
        (AssignSkills(TARGET.skills),),
        (Tag.DEPROVISION_SKILLS_RESTORED,),
    ),
    (
        job_at("reactivate", "restore_languages", restoration=TARGETED),
        Ready(),
        "restore_queues",
        "running",
        (AssignLanguages(TARGET.languages),),
        (Tag.DEPROVISION_LANGUAGES_RESTORED,),
    ),
    (
        job_at("reactivate", "restore_roles"),  # no snapshot recorded: nothing to restore
        Ready(),
        "restore_skills",
        "running",
        (),
        (),
    ),
    (
        job_at("reactivate", "restore_queues", restore_queue_ids=Q),
        QueuesSeen(frozenset({"q1"})),
        "verify_restore",
        "running",
        (AddQueue(QueueRef("q2")), JoinQueues((QueueRef("q2"),))),
        (Tag.DEPROVISION_QUEUE_RESTORED,),
    ),
    (  # q1 is back but unjoined (an admin's re-add, or a run stopped before its flag)
        job_at("reactivate", "restore_queues", restore_queue_ids=Q),
        QueuesSeen(frozenset({"q1"}), (QueueRef("q1", joined=False),)),
        "verify_restore",
        "running",
        (AddQueue(QueueRef("q2")), JoinQueues((QueueRef("q1"), QueueRef("q2")))),
        (Tag.DEPROVISION_QUEUE_RESTORED,),
    ),
    (  # both back, q2 with the wrong flag: only the flag, no add
        job_at("reactivate", "restore_queues", restore_queue_ids=Q),
        QueuesSeen(Q, (QueueRef("q1"), QueueRef("q2", joined=False))),
        "verify_restore",
        "running",
        (JoinQueues((QueueRef("q2"),)),),
        (Tag.DEPROVISION_QUEUE_RESTORED,),
    ),
    (  # both back as they were: nothing to do
        job_at("reactivate", "restore_queues", restore_queue_ids=Q),
        QueuesSeen(Q, (QueueRef("q1"), QueueRef("q2"))),
        "verify_restore",
        "running",
        (),
        (),
    ),
    (
        job_at("reactivate", "restore_queues"),
        QueuesSeen(frozenset()),
        "verify_restore",
        "running",
        (),
        (),
    ),
    (
        job_at("reactivate", "verify_restore", restoration=TARGETED, restore_queue_ids=Q),
        FootprintSeen(TARGET, (QueueRef("q1"), QueueRef("q2"))),
        "done",
        "done",
        (),
        (Tag.DEPROVISION_FOOTPRINT_VERIFIED, Tag.DEPROVISION_JOB_COMPLETED),
    ),
    (
        job_at("reactivate", "verify_restore", restoration=TARGETED),
        FootprintSeen(dataclasses.replace(TARGET, grants=TARGET.grants[:1])),
        "restore_division",
        "held",
        (),
        (Tag.DEPROVISION_FOOTPRINT_MISMATCH, Tag.DEPROVISION_JOB_HELD),
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
        "breaker": CLEAR,
        "drain": QueuesSeen(Q),
        "await_idle": ConversationsSeen(False),
        "deactivate": Ready(),
        "verify_before": HistorySeen(frozenset({"c"})),
        "delete": Ready(),
        "confirm_deleted": UserSeen("deleted"),
        "verify_after": HistorySeen(frozenset({"c"})),
        "tombstone": Ready(),
        "activate": Ready(),
        "restore_division": Ready(),
        "restore_roles": Ready(),
        "restore_skills": Ready(),
        "restore_languages": Ready(),
        "restore_queues": QueuesSeen(frozenset()),
        "verify_restore": FootprintSeen(Footprint()),
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
    # the breaker holds the delete, after the deactivation (access first)
    (
        job_at("delete", "breaker", access_cut=True),
        PolicyView(None, "inactive", deletes_in_window=3, breaker_limit=3),
        "breaker",
        "held",
        "breaker",
        "approval",
    ),
    (
        job_at("delete", "breaker", approved=True, access_cut=True),
        PolicyView(None, "inactive", deletes_in_window=30, breaker_limit=3),
        "drain",
        "running",
        None,
        None,
    ),
    (
        job_at("delete", "breaker", access_cut=True),
        PolicyView(None, "inactive", deletes_in_window=2, breaker_limit=3),
        "drain",
        "running",
        None,
        None,
    ),
    (
        job_at("delete", "guard"),
        PolicyView(None, "active", deletes_in_window=9, breaker_limit=3),
        "await_idle",
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
        "await_idle",
        "running",
        None,
        None,
    ),
    (job_at("delete", "guard", dry_run=True), CLEAR, "done", "done", None, None),
    # a deactivate upgraded to a delete after its deactivation goes through the breaker
    (job_at("delete", "drain", access_cut=True), QueuesSeen(Q), "breaker", "running", None, None),
    # active conversations: wait (bounded), then cut access anyway
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
        "deactivate",
        "running",
        None,
        None,
    ),
    # no conversationSummary in Genesys's answer: deactivate (Genesys refuses during a call)
    (job_at("delete", "await_idle"), ConversationsSeen(None), "deactivate", "running", None, None),
    # forced (cut-access, or the wait ran out): Genesys's 409 is retried at the deactivate
    (
        job_at("delete", "deactivate", forced=FORCED),
        Failure("active-conversation", applied=(RevokeSessions(),)),
        "deactivate",
        "waiting",
        None,
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
    (job_at("delete", "restore"), Ready(), "confirm_restored", "running", None, None),
    (
        job_at("delete", "confirm_restored"),
        UserSeen("inactive"),
        "verify_before",
        "held",
        "history-mismatch",
        "approval",
    ),
    (job_at("delete", "confirm_restored"), UserSeen("active"), "restore", "running", None, None),
    # a held mismatch retried: checked against the original evidence, never re-captured
    (
        job_at("delete", "verify_before", history=HELD_HISTORY),
        HistorySeen(frozenset({"a"})),
        "verify_before",
        "held",
        "history-mismatch",
        "approval",
    ),
    (
        job_at("delete", "verify_before", history=HELD_HISTORY),
        HistorySeen(frozenset({"a", "b"})),
        "delete",
        "running",
        None,
        None,
    ),
    # a drain Genesys refuses (memberBy=group: 400): retried with backoff, then given up on
    (
        job_at("delete", "drain", guarded_for_delete=True),
        Failure("invalid", refused=((QueueRef("q1"), {"status": 400}),)),
        "drain",
        "waiting",
        None,
        "queue-drain",
    ),
    (
        job_at("delete", "drain", guarded_for_delete=True, attempts=7),
        Failure("invalid", refused=((QueueRef("q1"), {"status": 400}),)),
        "verify_before",
        "running",
        None,
        None,
    ),
    (
        job_at("deactivate", "drain", attempts=7),
        Failure("invalid", refused=((QueueRef("q1"), {"status": 400}),)),
        "done",
        "done",
        "queues-not-removed",
        None,
    ),
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
    assert t.job.history.missing == {"b"}
    restore = decide(t.job, Ready(), RULES)  # at restore
    # An undelete comes back active (2.4): deactivated at once, sessions ended, read back.
    assert restore.effects == (Undelete(), SetState("inactive"), RevokeSessions())
    assert tags(restore) == (Tag.DEPROVISION_USER_RESTORED,)
    held = decide(restore.job, UserSeen("inactive"), RULES)
    assert (held.job.state, held.job.step, tags(held)) == (
        "held",
        "verify_before",
        (Tag.DEPROVISION_JOB_HELD,),
    )
    # The before-evidence is the one captured first, whatever happens after.
    assert held.job.history.before_ids == {"a", "b"}


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
    assert steps[:3] == ["await_idle", "deactivate", "breaker"]
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
            job_at("delete", "breaker"),
            CLEAR,
            lambda j: j.guarded_for_delete and j.delete_counted_at == 1000,
        ),
        (
            job_at("delete", "drain"),
            QueuesSeen(frozenset({"q1", "q9"}), (q1,)),
            lambda j: j.queues.removed == (q1, QueueRef("q9")),
        ),
        (  # gone since the snapshot: q1 removed by a run that died before recording it,
            # q2 refused by Genesys and ended by something else (the group): only q1 is removed
            dataclasses.replace(
                job_at("delete", "drain"),
                snapshot=Snapshot(SNAP_USER, (q1, QueueRef("q2")), 1000),
                queues=Memberships(unremoved=(Unremoved(QueueRef("q2"), {"status": 400}),)),
            ),
            QueuesSeen(frozenset()),
            lambda j: j.queues.removed == (q1,) and j.queues.unremoved == (),
        ),
        (
            job_at("delete", "deactivate"),
            Ready(),
            lambda j: j.access_cut_at == 1000 and j.sessions_revoked_at == 1000,
        ),
        (
            job_at("delete", "drain"),
            Failure("invalid", refused=((q1, {"status": 400, "code": "bad.request"}),)),
            lambda j: (
                j.queues.unremoved == (Unremoved(q1, {"status": 400, "code": "bad.request"}),)
                and j.queues.removed == ()
            ),
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
        (  # a rerun that only fixes a flag keeps what the first run re-added
            dataclasses.replace(
                job_at("reactivate", "restore_queues", restore_queue_ids=Q),
                queues=dataclasses.replace(
                    job_at("reactivate", "restore_queues", restore_queue_ids=Q).queues,
                    restored=(QueueRef("q2"),),
                ),
            ),
            QueuesSeen(Q, (QueueRef("q1"), QueueRef("q2", joined=False))),
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
        job_at("delete", "breaker", state="held", reason="breaker", waiting_on="approval"),
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
        job_at("deactivate", "drain", state="waiting", waiting_on="queue-drain"),
        Cancel("okta", leased=False),
        ("cancelled", (Tag.DEPROVISION_JOB_CANCELLED,), (), lambda j: j.waiting_on is None),
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
            "pending",
            (Tag.DEPROVISION_ACCESS_CUT_REQUESTED,),
            (),
            lambda j: (
                j.forced == ForcedCut("admin:ops", "left the company", 1000) and j.due_at == 1000
            ),
        ),
    ),
    (
        job_at("delete", "verify_before", state="held", access_cut=True),
        CutAccess("admin:ops", "ticket 7"),
        ("held", (Tag.DEPROVISION_ACCESS_CUT_REQUESTED,), (), lambda j: j.forced is None),
    ),
    (job_at("delete", "await_idle", state="waiting"), CutAccess("admin:ops", " "), NotAllowed),
    (job_at("delete", "await_idle"), CutAccess("admin:ops", "now"), NotAllowed),  # running
    (job_at("reactivate", "activate"), CutAccess("admin:ops", "x"), NotAllowed),
    (job_at("delete", "done", state="done"), CutAccess("admin:ops", "x"), NotAllowed),
    # a held mismatch: approved only by accepting every missing id by name, with a reason
    (
        job_at("delete", "verify_before", state="held", reason="history-mismatch"),
        Approve("admin:ops"),
        NotAllowed,
    ),
    (
        job_at(
            "delete", "verify_before", state="held", reason="history-mismatch", history=HELD_HISTORY
        ),
        Approve("admin:ops", frozenset({"b"})),
        NotAllowed,  # no reason
    ),
    (
        job_at(
            "delete", "verify_before", state="held", reason="history-mismatch", history=HELD_HISTORY
        ),
        Approve("admin:ops", frozenset({"z"}), "x"),
        NotAllowed,  # "b" not named, "z" not in the evidence
    ),
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
    assert t.job.step == job.step  # commands never move a job along its sequence (but accept)
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


def test_accepting_the_missing_conversations_records_who_why_and_proceeds_to_delete() -> None:
    job = job_at(
        "delete", "verify_before", state="held", reason="history-mismatch", history=HELD_HISTORY
    )
    t = m.command(job, Approve("operator:alice", frozenset({"b"}), "purged by legal"), now=1000)
    assert (t.job.state, t.job.step, t.job.approved_by) == ("pending", "delete", "operator:alice")
    assert tags(t) == (Tag.DEPROVISION_HISTORY_ACCEPTED, Tag.DEPROVISION_JOB_APPROVED)
    assert t.detail["accepted"] == ["b"]
    history = t.job.history
    assert history.accepted == (
        Acceptance(frozenset({"b"}), "operator:alice", "purged by legal", 1000),
    )
    assert (history.before, history.before_ids) == (HELD_HISTORY.before, {"a", "b"})
    # The check after the next delete does not look for "b" again, and still for "a".
    after = dataclasses.replace(t.job, step="verify_after", state="running")
    assert decide(after, HistorySeen(frozenset({"a"})), RULES).job.step == "tombstone"
    assert decide(after, HistorySeen(frozenset()), RULES).job.step == "restore"


def test_the_transition_table_covers_every_step_and_command() -> None:
    steps = {s for seq in m.SEQUENCES.values() for s in seq if s != "done"}
    steps |= {"restore", "confirm_restored"}
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
    assert tags(none_left) == (Tag.DEPROVISION_QUEUE_REMOVED, Tag.DEPROVISION_JOB_COMPLETED)


def test_a_drain_a_snapshot_left_the_memberships_to_records_them_before_removing() -> None:
    """A delete whose request handed its drain to the worker (issue 11) did not list the
    memberships at its snapshot: the drain records what it finds first (no removal, the same
    step), then removes them; killed after the removals, the record still has them."""
    q1, q2 = QueueRef("q1", "Sales"), QueueRef("q2", "Support")
    deferred = Snapshot({}, (), 1.0, queues_read=False)
    job = dataclasses.replace(job_at("delete", "drain", access_cut=True), snapshot=deferred)
    seen = QueuesSeen(frozenset({"q1", "q2"}), (q1, q2))
    first = decide(job, seen, RULES)
    assert (first.job.step, first.effects) == ("drain", ())
    assert tags(first) == (Tag.DEPROVISION_JOB_STEP,)
    assert first.job.snapshot is not None
    assert (first.job.snapshot.queues, first.job.snapshot.queues_read) == ((q1, q2), True)
    removing = decide(first.job, seen, RULES)
    assert removing.effects == (RemoveQueue(q1), RemoveQueue(q2))
    crashed = decide(first.job, QueuesSeen(frozenset()), RULES)
    assert set(crashed.job.queues.removed) == {q1, q2}


# --- the footprint (issue 12) ------------------------------------------------------------------


def test_a_deactivation_snapshot_keeps_the_footprint_as_the_restore_target() -> None:
    t = decide(job_at("deactivate", "snapshot"), UserSeen("active", footprint=TARGET), RULES)
    assert t.job.snapshot is not None
    assert t.job.snapshot.footprint == TARGET
    assert (t.job.restoration.target, t.job.restoration.source_job_id) == (TARGET, "j1")
    assert t.detail["snapshot"]["footprint"]["grants"] == [
        "role-agent@div-sales",
        "role-sup@div-support",
    ]


def test_a_later_snapshot_keeps_the_first_changes_footprint() -> None:
    """A delete after a deactivation sees what the deactivation stripped: the target stays the
    footprint before the first change, and the tombstone carries it."""
    stripped = Footprint(division_id="div-sales", skills=(), grants=())
    seen = UserSeen("inactive", footprint=stripped, restorable_footprint=(TARGET, "j0"))
    t = decide(job_at("delete", "snapshot"), seen, RULES)
    assert t.job.snapshot is not None
    assert t.job.snapshot.footprint == stripped
    assert (t.job.restoration.target, t.job.restoration.source_job_id) == (TARGET, "j0")
    row = m.tombstone_row(t.job, 0.0)
    assert row["detail"]["footprint"]["grants"][1]["division_id"] == "div-support"


def test_a_reactivation_takes_its_target_from_the_first_change() -> None:
    seen = UserSeen("inactive", restorable_footprint=(TARGET, "j0"))
    t = decide(job_at("reactivate", "snapshot"), seen, RULES)
    assert (t.job.restoration.target, t.job.restoration.source_job_id) == (TARGET, "j0")
    assert t.detail["restore_footprint"]["from_job"] == "j0"


@pytest.mark.parametrize("kind", ["permission", "not-found", "invalid"])
def test_a_restore_refused_for_good_is_recorded_and_the_next_part_goes_on(kind: str) -> None:
    job = job_at("reactivate", "restore_roles", restoration=TARGETED)
    error = {"error": "PermissionDenied", "status": 403, "code": "missing.any.permissions"}
    t = decide(job, Failure(kind, error=error), RULES)  # type: ignore[arg-type]
    assert (t.job.step, t.job.state) == ("restore_skills", "running")
    assert t.job.restoration.failed == {"roles": error}
    assert tags(t) == (Tag.DEPROVISION_RESTORE_FAILED,)
    # ... and the check shows the part missing, holding the job for a person.
    held = decide(
        dataclasses.replace(t.job, step="verify_restore"),
        FootprintSeen(dataclasses.replace(TARGET, grants=())),
        RULES,
    )
    assert (held.job.state, held.job.reason) == ("held", "restore-incomplete")
    assert held.job.restoration.difference == {
        "roles": ["role-agent@div-sales", "role-sup@div-support"]
    }
    assert held.detail["failed"] == {"roles": error}


def test_a_transient_restore_failure_waits_and_retries_the_same_step() -> None:
    job = job_at("reactivate", "restore_skills", restoration=TARGETED)
    t = decide(job, Failure("rate-limit", retry_after_s=7), RULES, now=100)
    assert (t.job.step, t.job.state, t.job.waiting_on) == (
        "restore_skills",
        "waiting",
        "rate-limit",
    )
    assert t.job.restoration.failed == {}


def test_the_difference_names_every_part() -> None:
    now = Footprint(
        division_id="div-home",
        grants=(Grant("role-agent", "div-sales"),),
        skills=(Level("skill-billing", 3.0),),
        languages=(Level("lang-en", 5.0),),
    )
    diff = m.footprint_difference(
        TARGET,
        (QueueRef("q1", joined=True), QueueRef("q2", joined=False)),
        FootprintSeen(now, (QueueRef("q1", joined=False),)),
    )
    assert diff == {
        "division": {"expected": "div-sales", "found": "div-home"},
        "roles": ["role-sup@div-support"],
        "skills": {"skill-billing": 4.5},
        "languages": {"lang-es": 3.0},
        "queues": ["q1", "q2"],
    }
    assert m.footprint_difference(TARGET, (), FootprintSeen(TARGET)) == {}


def test_a_deactivate_upgraded_while_its_last_step_ran_goes_on_as_a_delete() -> None:
    job = job_at("deactivate", "drain")
    ended = m.decide(job, QueuesSeen(frozenset()), now=1000)
    assert (ended.job.state, ended.job.step) == ("done", "done")

    merged = m.upgraded_meanwhile(job, ended, now=1001)

    assert (merged.job.action, merged.job.state, merged.job.step) == (
        "delete",
        "pending",
        "breaker",
    )
    assert merged.job.finished_at is None
    assert merged.job.due_at == 1001
    assert Tag.DEPROVISION_JOB_COMPLETED not in merged.events
    assert merged.detail["next_step"] == "breaker"


def test_a_deactivate_upgraded_while_a_middle_step_ran_keeps_its_step() -> None:
    job = job_at("deactivate", "deactivate")
    moved = m.decide(job, Ready(), now=1000)
    merged = m.upgraded_meanwhile(job, moved, now=1001)
    assert merged.job == dataclasses.replace(moved.job, action="delete")
    assert merged.events == moved.events
