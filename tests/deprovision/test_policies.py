"""Each policy (docs/deprovisioning.md) against the sandbox."""

from __future__ import annotations

import time

import pytest

from scim_bridge.audit import Tag
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Refused, Requester
from tests.deprovision.conftest import Engine, breaker, users

OKTA = Requester(actor="okta", idp="okta")


@pytest.mark.parametrize("how", ["id", "email", "glob"])
def test_protected_users_are_refused_and_untouched(deprov: Engine, how: str) -> None:
    uid = users(deprov.sandbox, deprov.gateway)[0]
    record = deprov.sandbox.user(uid)
    pattern = {
        "id": uid,
        "email": record["email"].upper(),
        "glob": "*@" + record["email"].split("@")[1],
    }[how]
    service, _ = deprov.build(protected=(pattern,))

    with pytest.raises(Refused) as caught:
        service.request("delete", uid, requester=OKTA)

    assert caught.value.reason == "protected"
    after = deprov.sandbox.user(uid)
    assert (after["state"], after["version"], after["queues"]) == (
        "active",
        record["version"],
        record["queues"],
    )
    tags = [e.tag for e in deprov.audit.events(job_id=caught.value.job_id)]
    assert Tag.DEPROVISION_USER_PROTECTED in tags


def test_dry_run_records_the_plan_and_changes_nothing(deprov: Engine) -> None:
    service, _ = deprov.build(dry_run=True)
    uid = next(u for u in users(deprov.sandbox, deprov.gateway) if deprov.sandbox.user(u)["queues"])
    record = deprov.sandbox.user(uid)

    outcome = service.request("delete", uid, requester=OKTA)

    assert (outcome.state, outcome.access_cut) == ("done", False)
    after = deprov.sandbox.user(uid)
    assert (after["state"], after["version"], after["queues"]) == (
        "active",
        record["version"],
        record["queues"],
    )
    job = jobs.find(deprov.engine, outcome.job_id)
    assert job is not None
    assert job.dry_run
    steps = [p["step"] for p in jobs.dump_data(job)["plan"]]
    assert steps == [
        "await_idle",
        "deactivate",
        "breaker",
        "drain",
        "verify_before",
        "delete",
        "confirm_deleted",
        "verify_after",
        "tombstone",
    ]
    assert jobs.dump_data(job)["plan"][3]["remove_queues"] == [q["id"] for q in record["queues"]]
    assert Tag.DEPROVISION_JOB_PLANNED in [
        e.tag for e in deprov.audit.events(job_id=outcome.job_id)
    ]


def test_delete_breaker_holds_further_deletes_until_approved(deprov: Engine) -> None:
    service, worker = deprov.build(breaker=breaker(2))
    a, b, c, d = users(deprov.sandbox, deprov.gateway)[:4]
    deprov.sandbox.sign_in(c)

    assert service.request("delete", a, requester=OKTA).state == "done"
    assert service.request("delete", b, requester=OKTA).state == "done"
    held = service.request("delete", c, requester=OKTA)

    # Access first (issue 10): the breaker holds the *delete*; the user is inactive already,
    # their sessions ended, and only then is the delete held for an operator.
    assert (held.state, held.access_cut, held.waiting_on) == ("held", True, "approval")
    record = deprov.sandbox.user(c)
    assert (record["state"], record["activeSessions"]) == ("inactive", 0)
    job = jobs.find(deprov.engine, held.job_id)
    assert job is not None
    assert (job.step, job.sessions_revoked_at is not None) == ("breaker", True)
    assert Tag.DEPROVISION_BREAKER_TRIPPED in [
        e.tag for e in deprov.audit.events(job_id=held.job_id)
    ]
    # A deactivate is not a delete: the breaker does not hold it.
    assert service.request("deactivate", d, requester=OKTA).state == "done"

    service.approve(held.job_id, actor="admin:alice")
    worker.run_until_idle()

    assert deprov.sandbox.user(c)["state"] == "deleted"
    job = jobs.find(deprov.engine, held.job_id)
    assert job is not None
    assert (job.state, job.approved_by) == ("done", "admin:alice")


def test_delete_inactive_after_deletes_what_the_bridge_deactivated(deprov: Engine) -> None:
    # The bridge's clock jumps ahead by days but still runs: a delete waits on Genesys's async
    # history job for real (milliseconds), and the sandbox's lake lives in real time.
    now, started = [time.time()], time.monotonic()
    service, worker = deprov.build(
        delete_inactive_after_s=30 * 86400,
        clock=lambda: now[0] + time.monotonic() - started,
    )
    a, b, c = users(deprov.sandbox, deprov.gateway)[:3]
    for uid in (a, b, c):
        service.request("deactivate", uid, requester=OKTA)
    service.request("reactivate", b, requester=OKTA)  # brought back through SCIM
    deprov.sandbox.faults()  # c is reactivated in Genesys directly, outside the bridge:
    deprov.gateway.set_state(c, "active")

    now[0] += 29 * 86400
    assert worker.schedule_policy_deletes(force=True) == 0
    now[0] += 2 * 86400
    assert worker.schedule_policy_deletes(force=True) == 2  # a and c; b has a later job
    worker.run_until_idle()

    assert deprov.sandbox.user(a)["state"] == "deleted"
    assert deprov.sandbox.user(b)["state"] == "active"
    assert deprov.sandbox.user(c)["state"] == "active"
    cancelled = jobs.listing(deprov.engine, user_id=c, state="cancelled")
    assert [(j.action, j.reason, j.from_policy) for j in cancelled] == [
        ("delete", "reactivated", True)
    ]
    assert worker.schedule_policy_deletes(force=True) == 0  # never twice
