"""The worker's batched history checks, and the operator surface (admin API, ``jobs`` command)."""

from __future__ import annotations

import subprocess
import sys
import time

import sqlalchemy as sa
from flask.testing import FlaskClient

from scim_bridge.app import create_app
from scim_bridge.audit import Tag
from scim_bridge.config import Settings
from scim_bridge.console.operators import OperatorStore
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.deprovision.proof import BY_ID_API
from scim_bridge.deprovision.worker import Worker
from tests.deprovision.conftest import Engine, breaker, users

OKTA = Requester(actor="okta", idp="okta")


def test_the_worker_checks_many_users_history_in_one_query(deprov: Engine) -> None:
    service, worker = deprov.build()
    targets = users(deprov.sandbox, deprov.gateway)[:6]
    for uid in targets:
        service.enqueue("delete", uid, requester=OKTA)
    before = deprov.sandbox.stats()["endpoints"]

    assert worker.run_until_idle() == 6

    rows = jobs.listing(deprov.engine)
    assert {j.state for j in rows} == {"done"}
    # One async job for the six checks before; after the delete, the ids found before read back
    # by id, the six users in the same reads (no async job).
    for job in rows:
        data = jobs.dump_data(job)
        assert data["evidence"]["before"]["users_in_query"] == 6
        (by_id,) = data["evidence"]["after"]["parts"]
        assert (by_id["api"], by_id["users"]) == (BY_ID_API, 6)
    assert len(deprov.sandbox.async_jobs()) == 1
    after = deprov.sandbox.stats()["endpoints"]
    made = sum(
        sum(after[k].values()) - sum(before.get(k, {}).values()) for k in after if "analytics" in k
    )
    assert made == worker.history_queries  # shared checks, not one per user


def test_admin_api_lists_shows_approves_and_finds_tombstones(deprov: Engine, db_url: str) -> None:
    service, worker = deprov.build(breaker=breaker(0))
    a = users(deprov.sandbox, deprov.gateway)[0]
    held = service.request("delete", a, requester=OKTA)
    assert held.state == "held"
    settings = Settings(
        genesys_api_host=deprov.sandbox.url,
        genesys_client_id=deprov.sandbox.client_id,
        genesys_client_secret=deprov.sandbox.client_secret,
        database_url=db_url,
        admin_token="s3cret-" + "x" * 32,
        worker_in_process=False,
    )
    app = create_app(settings)
    try:
        _drive_admin_api(app.test_client(), deprov, held.job_id, worker, a)
    finally:
        app.extensions["scim_bridge"].close()


def _drive_admin_api(
    client: FlaskClient, deprov: Engine, job_id: str, worker: Worker, a: str
) -> None:
    auth = {"Authorization": "Bearer s3cret-" + "x" * 32}

    assert client.get("/admin/jobs").status_code == 401
    listed = client.get("/admin/jobs?state=held", headers=auth).get_json()["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    shown = client.get(f"/admin/jobs/{job_id}", headers=auth).get_json()
    assert shown["reason"] == "breaker"
    assert Tag.DEPROVISION_BREAKER_TRIPPED in [e["tag"] for e in shown["audit_events"]]
    # Held by the breaker after the deactivation (access first, issue 10).
    assert [s["step"] for s in shown["steps"]] == [
        "snapshot",
        "guard",
        "await_idle",
        "deactivate",
        "breaker",
    ]
    retried = client.post(
        f"/admin/jobs/{job_id}/retry", headers=auth, json={"by": "ci", "reason": "after the fix"}
    )
    assert retried.status_code == 200
    retry_event = [e for e in deprov.audit.events(job_id=job_id) if e.actor == "admin:ci"][-1]
    assert retry_event.detail["operator_reason"] == "after the fix"
    worker.run_until_idle()
    assert jobs.find(deprov.engine, job_id).state == "held"  # retry is not approval
    approved = client.post(f"/admin/jobs/{job_id}/approve", headers=auth, json={"by": "alice"})
    assert approved.status_code == 200
    assert client.post(f"/admin/jobs/{job_id}/approve", headers=auth).status_code == 409
    worker.run_until_idle()

    stone = client.get(f"/admin/tombstones/{a}", headers=auth).get_json()
    assert stone["job_id"] == job_id
    assert client.get("/admin/tombstones/nobody", headers=auth).status_code == 404


def test_jobs_command(deprov: Engine, db_url: str, engine: sa.Engine) -> None:
    service, _ = deprov.build(breaker=breaker(0))
    held = service.request("delete", users(deprov.sandbox, deprov.gateway)[0], requester=OKTA)
    env = {"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scim_bridge", "jobs", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    listed = cli("list", "--state", "held")
    assert listed.returncode == 0
    assert held.job_id in listed.stdout
    # Under a header, with what the held job waits on and why (trial-sec B11).
    assert listed.stdout.splitlines()[0].split()[:3] == ["JOB", "ACTION", "STATE"]
    assert "approval: breaker" in listed.stdout
    assert '"reason": "breaker"' in cli("show", held.job_id).stdout
    # An operator's action, as in the console: a live operator's name and a reason.
    assert cli("approve", held.job_id, "--operator", "bob").returncode == 2  # no --reason
    unknown = cli("approve", held.job_id, "--operator", "mallory", "--reason", "leaver")
    assert unknown.returncode == 1
    assert "no live operator named 'mallory'" in unknown.stderr
    OperatorStore(engine).create("bob")
    blank = cli("approve", held.job_id, "--operator", "bob", "--reason", "  ")
    assert (blank.returncode, jobs.find(engine, held.job_id).state) == (1, "held")
    approved = cli("approve", held.job_id, "--operator", "bob", "--reason", "HR ticket 4411")
    assert approved.returncode == 0, approved.stderr
    assert "pending" in approved.stdout
    assert cli("approve", held.job_id, "--by", "bob", "--reason", "again").returncode == 1
    assert jobs.find(engine, held.job_id).approved_by == "operator:bob"
    approval = next(e for e in deprov.audit.events(job_id=held.job_id) if e.actor == "operator:bob")
    assert approval.detail["operator_reason"] == "HR ticket 4411"
    cancelled = cli("cancel", held.job_id, "--operator", "bob", "--reason", "wrong person")
    assert cancelled.returncode == 0, cancelled.stderr
    assert jobs.find(engine, held.job_id).state == "cancelled"
    reasons = [e.detail.get("operator_reason") for e in deprov.audit.events(job_id=held.job_id)]
    assert "wrong person" in reasons


def test_requests_leave_history_checks_to_a_separate_worker_that_reports(deprov: Engine) -> None:
    """With ``scim-bridge worker`` running elsewhere (no in-process worker to wake), a request
    that finds other deletes waiting for a history check stops at its own, so that the worker
    checks them together; with no live worker it runs its check itself."""
    service, worker = deprov.build(worker=False)
    alone, first, second = users(deprov.sandbox, deprov.gateway)[:3]

    # No worker has reported: nothing would pick the job up, so it runs to the end inline.
    assert service.request("delete", alone, requester=OKTA).state == "done"

    # A delete parked at its history check (as a worker round leaves it)...
    parked, _created = service.enqueue("delete", first, requester=OKTA)
    claim = jobs.claim_one(deprov.engine, parked.id, owner="test", now=service.clock(), lease_s=30)
    assert claim is not None
    result = service.runner.run(claim, deadline=time.monotonic() + 30, stop_before_history=True)
    assert result.stopped == "needs-history"
    jobs.release(deprov.engine, result.claim, now=service.clock())
    # ...and a worker process elsewhere that reported a moment ago.
    jobs.heartbeat(
        deprov.engine,
        worker_id="worker-elsewhere",
        now=service.clock(),
        started_at=service.clock(),
        jobs_finished=0,
        state="running",
    )
    outcome = service.request("delete", second, requester=OKTA)
    assert outcome.access_cut
    assert not outcome.final  # left at its history check for the worker

    assert worker.run_until_idle() >= 2
    done = {j.user_id: j for j in jobs.listing(deprov.engine)}
    for uid in (first, second):
        assert done[uid].state == "done"
        assert jobs.dump_data(done[uid])["evidence"]["before"]["users_in_query"] == 2
