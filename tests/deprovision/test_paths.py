"""Every path of a job against the sandbox over HTTP: what Genesys holds afterwards and what the
audit trail says (STYLE.md 3)."""

from __future__ import annotations

import pytest

from scim_bridge.audit import Tag
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Refused, Requester
from tests.deprovision.conftest import Engine, users, with_queues

OKTA = Requester(actor="okta", idp="okta", scim_id="scim-1")


def tags_for(deprov: Engine, job_id: str) -> list[str]:
    return [e.tag for e in deprov.audit.events(job_id=job_id)]


def test_deactivate_cuts_access_then_drains_queues(deprov: Engine) -> None:
    service, _ = deprov.build()
    uid = with_queues(deprov.sandbox, deprov.gateway)[0]
    queues_before = {q["id"] for q in deprov.sandbox.user(uid)["queues"]}

    outcome = service.request("deactivate", uid, requester=OKTA)

    assert (outcome.state, outcome.access_cut, outcome.final) == ("done", True, True)
    held = deprov.sandbox.user(uid)
    assert held["state"] == "inactive"
    assert held["queues"] == []
    job = jobs.find(deprov.engine, outcome.job_id)
    assert job is not None
    assert {q["id"] for q in jobs.dump_data(job)["removed_queues"]} == queues_before
    assert tags_for(deprov, outcome.job_id) == [
        Tag.DEPROVISION_JOB_CREATED,
        Tag.DEPROVISION_USER_SNAPSHOT,
        Tag.DEPROVISION_JOB_STEP,  # guard
        Tag.DEPROVISION_JOB_STEP,  # await_idle
        Tag.DEPROVISION_USER_DEACTIVATED,  # access first (issue 10)
        Tag.DEPROVISION_SESSIONS_REVOKED,
        Tag.DEPROVISION_QUEUE_REMOVED,
        Tag.DEPROVISION_JOB_COMPLETED,
    ]
    assert deprov.audit.verify().ok


def test_every_step_names_its_genesys_correlation_ids(deprov: Engine) -> None:
    service, _ = deprov.build()
    uid = with_queues(deprov.sandbox, deprov.gateway)[0]
    outcome = service.request("deactivate", uid, requester=OKTA)
    deactivated = next(
        e
        for e in deprov.audit.events(job_id=outcome.job_id)
        if e.tag == Tag.DEPROVISION_USER_DEACTIVATED
    )
    calls = deactivated.detail["calls"]
    # The PATCH carries the version await_idle's GET (recorded on that step) just read; the
    # sessions end in the same step (DELETE /api/v2/tokens/{userId}).
    assert [c["method"] for c in calls] == ["PATCH", "DELETE"]
    assert all(c["correlation_id"] for c in calls)
    for event in deprov.audit.events(job_id=outcome.job_id):
        assert all(c["correlation_id"] for c in event.detail.get("calls", []))


def test_reactivate_restores_the_queues_the_bridge_removed(deprov: Engine) -> None:
    service, _ = deprov.build()
    uid = with_queues(deprov.sandbox, deprov.gateway)[0]
    before = sorted((q["id"], q.get("joined")) for q in deprov.sandbox.user(uid)["queues"])
    service.request("deactivate", uid, requester=OKTA)

    outcome = service.request("reactivate", uid, requester=OKTA)

    assert (outcome.state, outcome.final) == ("done", True)
    after = deprov.sandbox.user(uid)
    assert after["state"] == "active"
    assert sorted((q["id"], q.get("joined")) for q in after["queues"]) == before
    assert Tag.DEPROVISION_QUEUE_RESTORED in tags_for(deprov, outcome.job_id)


def test_delete_proves_history_and_leaves_a_tombstone(deprov: Engine) -> None:
    service, _ = deprov.build()
    uid = next(
        u
        for u in users(deprov.sandbox, deprov.gateway)
        if deprov.sandbox.user(u)["conversationCount"] > 0
    )
    record = deprov.sandbox.user(uid)

    outcome = service.request("delete", uid, requester=OKTA)

    assert (outcome.state, outcome.access_cut, outcome.final) == ("done", True, True)
    assert deprov.sandbox.user(uid)["state"] == "deleted"
    job = jobs.find(deprov.engine, outcome.job_id)
    assert job is not None
    before, after = (
        jobs.dump_data(job)["evidence"]["before"],
        jobs.dump_data(job)["evidence"]["after"],
    )
    assert before["count"] == record["conversationCount"] > 0
    assert before["sha256"] == after["sha256"]
    stone = jobs.tombstone(deprov.engine, uid)
    assert stone is not None
    assert (stone["name"], stone["email"]) == (record["name"], record["email"])
    assert stone["evidence_sha256"] == before["sha256"]
    assert tags_for(deprov, outcome.job_id)[-7:] == [
        Tag.DEPROVISION_HISTORY_WAITING,  # the async details job for the check before
        Tag.DEPROVISION_HISTORY_CAPTURED,
        Tag.DEPROVISION_JOB_STEP,  # the DELETE itself
        Tag.DEPROVISION_USER_DELETED,
        Tag.DEPROVISION_HISTORY_VERIFIED,  # read back by id: no async job to wait for
        Tag.DEPROVISION_TOMBSTONE_WRITTEN,
        Tag.DEPROVISION_JOB_COMPLETED,
    ]
    assert deprov.audit.verify().ok


def test_history_purged_by_the_delete_restores_the_user_and_holds(deprov: Engine) -> None:
    service, _ = deprov.build()
    deprov.sandbox.faults(purge_history_on_delete=True)
    uid = next(
        u
        for u in users(deprov.sandbox, deprov.gateway)
        if deprov.sandbox.user(u)["conversationCount"] > 0
    )

    outcome = service.request("delete", uid, requester=OKTA)

    assert (outcome.state, outcome.access_cut, outcome.final) == ("held", True, False)
    assert deprov.sandbox.user(uid)["state"] == "inactive"  # restored, still without access
    job = jobs.find(deprov.engine, outcome.job_id)
    assert job is not None
    assert (job.reason, job.step) == ("history-mismatch", "verify_before")
    assert (
        jobs.dump_data(job)["evidence"]["after"]["missing_count"]
        == jobs.dump_data(job)["evidence"]["before"]["count"]
    )
    assert jobs.tombstone(deprov.engine, uid) is None
    tags = tags_for(deprov, outcome.job_id)
    assert Tag.DEPROVISION_HISTORY_MISMATCH in tags
    assert tags[-2:] == [Tag.DEPROVISION_USER_RESTORED, Tag.DEPROVISION_JOB_HELD]
    # A SIEM rule on outcome != "ok" catches the first detection, not only the hold after it.
    mismatches = deprov.audit.events(job_id=outcome.job_id, tag=Tag.DEPROVISION_HISTORY_MISMATCH)
    assert [e.outcome for e in mismatches] == ["mismatch"]


def test_unknown_user_is_refused(deprov: Engine) -> None:
    service, _ = deprov.build()
    with pytest.raises(Refused) as caught:
        service.request("deactivate", "00000000-0000-0000-0000-000000000000", requester=OKTA)
    assert caught.value.reason == "not-found"
    assert caught.value.job_id is not None
