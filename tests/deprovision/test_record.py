"""The job record's one serialiser (``jobs.py``): rows written before the typed record still load,
and a record survives a round trip through the ``jobs`` row unchanged."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.record import QueueRef

# A delete job's row exactly as the code before the typed record (schema 1: no "schema" key)
# wrote it, at the tombstone step, after removing a queue.
V1_DATA = {
    "snapshot": {
        "user": {
            "id": "u-1",
            "name": "Ada Lovelace",
            "email": "ada@corp.example",
            "username": "ada@corp.example",
            "state": "inactive",
            "version": 4,
            "department": "Sales",
            "title": "Agent",
        },
        "queues": [{"id": "q1", "name": "Sales", "joined": True}],
        "at": 1764500000.5,
    },
    "removed_queues": [{"id": "q1", "name": "Sales", "joined": True}],
    "evidence": {
        "before": {
            "count": 2,
            "sha256": "ab" * 32,
            "sample": ["c1", "c2"],
            "window": {"since": "2026-09-01T00:00:00+00:00", "until": "2026-11-30T11:00:00+00:00"},
            "analytics_queries": 3,
            "users_in_query": 1,
        },
        "after": {
            "count": 1,
            "sha256": "cd" * 32,
            "sample": ["c1"],
            "window": {"since": "2026-09-01T00:00:00+00:00", "until": "2026-11-30T11:00:00+00:00"},
            "analytics_queries": 1,
            "users_in_query": 1,
            "missing_count": 1,
            "missing_sample": ["c2"],
        },
    },
    "history_before_ids": ["c1", "c2"],
    "history_before_intervals": {"2026-09-01T00:00:00Z/2026-10-01T00:00:00Z": ["c1", "c2"]},
}
V1_ROW: dict[str, Any] = {
    "id": "j1",
    "user_id": "u-1",
    "action": "delete",
    "state": "held",
    "step": "verify_before",
    "attempts": 0,
    "due_at": 1764500100.0,
    "claimed_by": None,
    "lease_token": None,
    "lease_expires_at": None,
    "waiting_on": "approval",
    "reason": "history-mismatch",
    "requested_by": "okta",
    "idp": "okta",
    "scim_id": "s-1",
    "from_policy": 0,  # SQLite hands booleans back as integers
    "dry_run": 0,
    "approved_by": None,
    "cancel_requested": 0,
    "guarded_for_delete": 1,
    "delete_counted_at": 1764500001.0,
    "access_cut_at": 1764500002.0,
    "waiting_since": None,
    "data": json.dumps(V1_DATA, sort_keys=True, separators=(",", ":")),
    "created_at": 1764500000.0,
    "updated_at": 1764500100.0,
    "finished_at": None,
}


def test_a_row_written_before_the_typed_record_loads() -> None:
    job = jobs.from_row(V1_ROW)
    assert (job.action, job.state, job.step, job.reason) == (
        "delete",
        "held",
        "verify_before",
        "history-mismatch",
    )
    assert job.guarded_for_delete is True
    assert job.from_policy is False
    assert job.access_cut
    assert not job.approved
    assert job.snapshot is not None
    assert job.snapshot.user["email"] == "ada@corp.example"
    assert job.snapshot.queues == (QueueRef("q1", "Sales", True),)
    assert job.queues.removed == (QueueRef("q1", "Sales", True),)
    assert job.queues.to_restore is None
    before, after = job.history.before, job.history.after
    assert before is not None
    assert after is not None
    assert (before.count, before.sha256, before.analytics_queries) == (2, "ab" * 32, 3)
    assert before.window.until.isoformat() == "2026-11-30T11:00:00+00:00"
    assert (after.missing_count, after.missing_sample) == (1, ("c2",))
    assert job.history.before_ids == {"c1", "c2"}
    assert job.history.before_intervals == {
        "2026-09-01T00:00:00Z/2026-10-01T00:00:00Z": {"c1", "c2"}
    }


def test_an_old_row_is_rewritten_with_the_same_keys_and_a_schema_version() -> None:
    """What the admin API shows (``data``) keeps its keys; only ``schema`` is added."""
    row = jobs.to_row(jobs.from_row(V1_ROW))
    data = json.loads(row["data"])
    assert data.pop("schema") == jobs.SCHEMA_VERSION
    assert data == V1_DATA
    assert {k: v for k, v in row.items() if k != "data"} == {
        k: (
            bool(v)
            if k in ("from_policy", "dry_run", "cancel_requested", "guarded_for_delete")
            else v
        )
        for k, v in V1_ROW.items()
        if k != "data"
    }


def test_keys_this_version_does_not_know_are_kept() -> None:
    data = {**V1_DATA, "schema": 2, "from_the_future": {"x": 1}}
    job = jobs.from_row({**V1_ROW, "data": json.dumps(data)})
    assert job.extra == {"from_the_future": {"x": 1}}
    assert json.loads(jobs.to_row(job)["data"])["from_the_future"] == {"x": 1}


def test_a_newer_schema_is_refused_rather_than_misread() -> None:
    row = {**V1_ROW, "data": json.dumps({"schema": jobs.SCHEMA_VERSION + 1})}
    with pytest.raises(ValueError, match="newer"):
        jobs.from_row(row)


def test_an_empty_data_document_loads_as_a_fresh_job() -> None:
    job = jobs.from_row({**V1_ROW, "data": "{}"})
    assert job.snapshot is None
    assert job.history.before is None
    assert job.queues.removed == ()
    assert jobs.changes(job, job) == {}


# Rows of schema 2 (before access first, issue 10): the breaker held a delete at ``guard`` with
# the user still active; the drain came before the deactivation.
V2_HELD_BY_BREAKER: dict[str, Any] = {
    **V1_ROW,
    "step": "guard",
    "state": "held",
    "reason": "breaker",
    "waiting_on": "approval",
    "guarded_for_delete": 0,
    "delete_counted_at": None,
    "access_cut_at": None,
    "data": json.dumps({"schema": 2, "snapshot": V1_DATA["snapshot"]}),
}


def test_a_schema_2_delete_held_by_the_breaker_is_deactivated_first_then_held_again() -> None:
    job = jobs.from_row(V2_HELD_BY_BREAKER)
    # It runs again from the guard: deactivate, then the breaker step holds the delete.
    assert (job.state, job.step, job.reason, job.waiting_on) == ("pending", "guard", None, None)
    assert json.loads(jobs.to_row(job)["data"])["schema"] == jobs.SCHEMA_VERSION


def test_a_schema_2_job_at_its_drain_deactivates_before_draining() -> None:
    row = {**V2_HELD_BY_BREAKER, "step": "drain", "state": "waiting", "reason": None}
    job = jobs.from_row(row)
    assert (job.state, job.step) == ("waiting", "await_idle")
    # Access cut already, or finished: nothing to move.
    cut = jobs.from_row({**row, "access_cut_at": 1764500002.0})
    assert cut.step == "drain"
    done = jobs.from_row({**row, "state": "done", "step": "done"})
    assert done.step == "done"


def test_what_access_first_adds_to_the_record_survives_a_round_trip() -> None:
    from scim_bridge.deprovision.record import Acceptance, ForcedCut, Unremoved

    job = jobs.from_row({**V1_ROW, "data": json.dumps({**V1_DATA, "schema": 3})})
    q = QueueRef("q7", "Billing", False)
    job = dataclasses.replace(
        job,
        sessions_revoked_at=1764500003.0,
        forced=ForcedCut("admin:ops", "left", 1764500004.0),
        queues=dataclasses.replace(job.queues, unremoved=(Unremoved(q, {"status": 400}),)),
        history=dataclasses.replace(
            job.history,
            missing=frozenset({"c2"}),
            accepted=(Acceptance(frozenset({"c2"}), "operator:alice", "purged", 1764500005.0),),
        ),
    )
    again = jobs.from_row(jobs.to_row(job))
    assert again == job
