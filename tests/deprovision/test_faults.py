"""Genesys misbehaving during a job: 429 storms, 5xx bursts, token expiry, active conversations,
a concurrent editor. The job ends right, and a 429 never becomes a failure."""

from __future__ import annotations

import threading

from scim_bridge.audit import Tag
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from tests.deprovision.conftest import Engine, finish, users, with_queues

OKTA = Requester(actor="okta", idp="okta")


def test_a_429_storm_past_the_budget_is_durable_not_a_failure(deprov: Engine) -> None:
    service, worker = deprov.build(sync_budget_s=0.5)
    uid = with_queues(deprov.sandbox, deprov.gateway)[0]
    deprov.sandbox.fail_next("/api/v2/routing/queues", status=429, count=6, retry_after=1)

    outcome = service.request("delete", uid, requester=OKTA)

    assert outcome.durable
    assert not outcome.final
    assert outcome.waiting_on == "rate-limit"
    job = finish(worker, outcome.job_id)
    assert job.state == "done"
    assert deprov.sandbox.user(uid)["state"] == "deleted"
    assert deprov.sandbox.user(uid)["queues"] == []
    assert deprov.sandbox.stats()["rate_limited"] >= 6


def test_5xx_bursts_and_token_expiry_mid_job(deprov: Engine) -> None:
    service, _ = deprov.build()
    uid = with_queues(deprov.sandbox, deprov.gateway)[0]
    deprov.gateway.ensure_token()
    deprov.sandbox.expire_tokens()
    deprov.sandbox.faults(error_rate=0.2)

    outcome = service.request("delete", uid, requester=OKTA)

    deprov.sandbox.faults(error_rate=0.0)
    assert outcome.state == "done", outcome
    assert deprov.sandbox.user(uid)["state"] == "deleted"
    assert deprov.sandbox.stats()["tokens_issued"] >= 2
    assert deprov.audit.verify().ok


def test_an_active_conversation_is_waited_out(deprov: Engine) -> None:
    service, worker = deprov.build(sync_budget_s=0.5)
    uid = with_queues(deprov.sandbox, deprov.gateway)[0]
    deprov.sandbox.set_conversation(uid, True)

    outcome = service.request("deactivate", uid, requester=OKTA)

    assert (outcome.state, outcome.access_cut, outcome.waiting_on) == (
        "waiting",
        False,
        "active-conversation",
    )
    # Nothing changed yet: the deactivation comes first, and the drain after it (access first).
    queues = deprov.sandbox.user(uid)["queues"]
    assert queues
    assert deprov.sandbox.user(uid)["state"] == "active"
    worker.run_until_idle()
    assert deprov.sandbox.user(uid)["state"] == "active"  # still talking

    deprov.sandbox.set_conversation(uid, False)
    job = finish(worker, outcome.job_id)
    assert job.state == "done"
    assert deprov.sandbox.user(uid)["state"] == "inactive"
    assert deprov.sandbox.user(uid)["queues"] == []
    waits = [
        e
        for e in deprov.audit.events(job_id=job.id)
        if e.tag == Tag.DEPROVISION_CONVERSATION_WAITING
    ]
    assert len(waits) == 1


def test_a_concurrent_editor_bumping_the_version(deprov: Engine) -> None:
    service, worker = deprov.build(sync_budget_s=2)
    uid = users(deprov.sandbox, deprov.gateway)[0]
    deprov.sandbox.faults(latency_ms=15)  # widen the window between the GET and the PATCH
    stop = threading.Event()

    def editor() -> None:  # someone saving the user in Genesys, over and over
        while not stop.wait(0.01):
            deprov.sandbox.bump_version(uid)

    thread = threading.Thread(target=editor)
    thread.start()
    try:
        outcome = service.request("deactivate", uid, requester=OKTA)
        stop.set()
        thread.join()
        deprov.sandbox.faults(latency_ms=0)
    finally:
        stop.set()
        thread.join()
    job = finish(worker, outcome.job_id)
    assert job.state == "done"
    assert deprov.sandbox.user(uid)["state"] == "inactive"
    assert deprov.sandbox.stats()["by_status"].get("409", 0) >= 1


def test_a_second_request_joins_and_a_delete_upgrades_a_deactivate(deprov: Engine) -> None:
    service, worker = deprov.build(sync_budget_s=0.3)
    uid = with_queues(deprov.sandbox, deprov.gateway)[0]
    deprov.sandbox.set_conversation(uid, True)
    first = service.request("deactivate", uid, requester=OKTA)
    again = service.request("deactivate", uid, requester=OKTA)
    assert again.job_id == first.job_id
    assert again.joined_existing

    upgraded = service.request("delete", uid, requester=OKTA)
    assert upgraded.job_id == first.job_id
    assert upgraded.action == "delete"
    opened = service.open_job(uid)
    assert opened is not None
    assert opened.action == "delete"

    deprov.sandbox.set_conversation(uid, False)
    # Until the job is done, not a fixed pause: its next poll may come late on a loaded machine.
    assert finish(worker, first.job_id).state == "done"
    assert deprov.sandbox.user(uid)["state"] == "deleted"
    assert service.open_job(uid) is None
    assert len(jobs.listing(deprov.engine, user_id=uid)) == 1


def test_reactivate_supersedes_an_open_deactivate(deprov: Engine) -> None:
    # The reactivation restores the footprint too (issue 12): a few more calls than 0.3 s allow
    # on a loaded machine. The deactivate stops at its conversation wait whatever the budget.
    service, _worker = deprov.build(sync_budget_s=5.0)
    uid = with_queues(deprov.sandbox, deprov.gateway)[0]
    queues = sorted(q["id"] for q in deprov.sandbox.user(uid)["queues"])
    deprov.sandbox.set_conversation(uid, True)
    first = service.request("deactivate", uid, requester=OKTA)
    assert first.state == "waiting"

    back = service.request("reactivate", uid, requester=OKTA)

    assert back.job_id != first.job_id
    assert back.state == "done"
    cancelled = jobs.find(deprov.engine, first.job_id)
    assert cancelled is not None
    assert cancelled.state == "cancelled"
    assert sorted(q["id"] for q in deprov.sandbox.user(uid)["queues"]) == queues
    assert deprov.sandbox.user(uid)["state"] == "active"
