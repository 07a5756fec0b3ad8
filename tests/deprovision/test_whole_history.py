"""The history proof over the whole window (HISTORY_SINCE to now), against the sandbox over HTTP:
an async details job for what the data lake holds, the synchronous query for the tail
(genesys-api.md 4.1, 4.3; deprovision/proof.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from scim_bridge.app import create_app
from scim_bridge.audit import Tag
from scim_bridge.config import Settings
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.deprovision.proof import BY_ID_API, JOB_API, QUERY_API
from scim_bridge.deprovision.record import Job
from tests.deprovision.conftest import Engine, finish, users

OKTA = Requester(actor="okta", idp="okta", scim_id="scim-1")
DEEP = 1095
ADMIN_TOKEN = "s3cret-" + "x" * 32  # at least 32 characters (config)


def _deep(
    deprov: Engine, *, lag_days: float = 0.04, users_: int | None = None, **faults: Any
) -> None:
    deprov.sandbox.reset(users=users_, history_days=DEEP)
    deprov.sandbox.faults(
        async_job_delay_s=0.05, data_availability_lag_s=lag_days * 86400, **faults
    )


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _parts(data: dict[str, Any], side: str) -> dict[str, dict[str, Any]]:
    return {p["api"]: p for p in data["evidence"][side]["parts"]}


def _with_old_history(deprov: Engine, older_than_days: int) -> str:
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    for uid in users(deprov.sandbox, deprov.gateway):
        record = deprov.sandbox.user(uid)
        oldest = record["oldestConversationAt"]
        if oldest and _parse(oldest) < cutoff and record["conversationCount"] > 1:
            return uid
    raise AssertionError("the deep org has no user with old history")


def _until_waiting_on_the_async_job(deprov: Engine, job_id: str) -> Job:
    """A first process runs the job until it waits on its async details job (then "dies")."""
    _, worker = deprov.build(history_job_poll_s=5.0)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        worker.run_once()
        job = jobs.find(deprov.engine, job_id)
        assert job is not None
        if job.waiting_on == "history-job":
            return job
        time.sleep(0.02)
    raise AssertionError("the job never waited on an async history job")


def test_the_proof_covers_every_conversation_back_to_history_since(deprov: Engine) -> None:
    _deep(deprov)
    service, worker = deprov.build()
    uid = _with_old_history(deprov, 400)
    record = deprov.sandbox.user(uid)
    job = finish(worker, service.request("delete", uid, requester=OKTA).job_id)
    assert job.state == "done"
    data = jobs.dump_data(job)
    before = data["evidence"]["before"]
    assert before["count"] == record["conversationCount"]  # the old ones included
    since = datetime.fromisoformat(before["window"]["since"])
    until = datetime.fromisoformat(before["window"]["until"])
    assert until - since == timedelta(days=1826)  # HISTORY_SINCE's default: five years
    lake, tail = _parts(data, "before")[JOB_API], _parts(data, "before")[QUERY_API]
    assert (lake["since"], lake["until"]) == (before["window"]["since"], before["window"]["until"])
    assert datetime.fromisoformat(lake["data_availability"]) <= until
    assert lake["job_id"]
    assert datetime.fromisoformat(tail["since"]) == datetime.fromisoformat(
        lake["data_availability"]
    ) - timedelta(days=7)
    assert tail["until"] == before["window"]["until"]
    assert data["evidence"]["after"]["sha256"] == before["sha256"]
    # The check after reads back by id what the two parts found, over the same window.
    (after,) = data["evidence"]["after"]["parts"]
    assert after["api"] == BY_ID_API
    assert (after["since"], after["until"], after["count"]) == (
        lake["since"],
        tail["until"],
        before["count"],
    )
    assert after["calls"] == -(-before["count"] // 100)
    assert len(deprov.sandbox.async_jobs()) == 1  # the check before's only


def test_a_purge_of_only_old_conversations_is_caught_restored_and_held(deprov: Engine) -> None:
    """purge_history_older_than_days=120: only conversations older than 120 days lose the
    user's id, which a check over the last 90 days could never see."""
    _deep(deprov, purge_history_on_delete=True, purge_history_older_than_days=120)
    service, worker = deprov.build()
    uid = _with_old_history(deprov, 200)
    job = finish(worker, service.request("delete", uid, requester=OKTA).job_id)
    assert (job.state, job.reason) == ("held", "history-mismatch")
    assert deprov.sandbox.user(uid)["state"] == "inactive"  # restored, access still cut
    data = jobs.dump_data(job)
    after = data["evidence"]["after"]
    assert after["missing_count"] >= 1
    lost = set(after["missing_sample"])
    assert lost <= set(data["history_before_lake_ids"])  # found by the async part only
    tail_ids = {i for ids in data["history_before_intervals"].values() for i in ids}
    assert not lost & tail_ids
    tags = [e.tag for e in deprov.audit.events(job_id=job.id)]
    assert Tag.DEPROVISION_HISTORY_MISMATCH in tags
    assert Tag.DEPROVISION_USER_RESTORED in tags


def test_history_newer_than_the_lake_is_checked_by_the_synchronous_query(
    deprov: Engine,
) -> None:
    """The lake lags 20 days: what happened since is only in the synchronous tail, and a loss
    there is caught by the check after the delete, which reads the tail's ids back by id."""
    _deep(deprov, lag_days=20)
    service, worker = deprov.build()
    recent = None
    # Pick a user whose proof needs the tail: a delete without a purge verifies through it.
    for uid in users(deprov.sandbox, deprov.gateway)[:8]:
        job = finish(worker, service.request("delete", uid, requester=OKTA).job_id)
        data = jobs.dump_data(job)
        tail_ids = {i for ids in data["history_before_intervals"].values() for i in ids}
        if tail_ids - set(data["history_before_lake_ids"]):
            recent = data
            break
    assert recent is not None, "no user had conversations in the last 20 days"
    assert recent["evidence"]["after"]["sha256"] == recent["evidence"]["before"]["sha256"]
    after = _parts(recent, "after")[BY_ID_API]
    assert after["count"] == recent["evidence"]["before"]["count"]
    assert _parts(recent, "before")[QUERY_API]["count"] > 0

    # Now with every conversation purged on delete: the recent ones are caught by the tail.
    deprov.sandbox.faults(purge_history_on_delete=True)
    victim = None
    for uid in users(deprov.sandbox, deprov.gateway)[8:]:
        job = finish(worker, service.request("delete", uid, requester=OKTA).job_id)
        data = jobs.dump_data(job)
        if job.state == "held" and _parts(data, "before")[QUERY_API]["count"]:
            victim = data
            break
    assert victim is not None
    # The read by id missed them; the path that found them confirmed it.
    assert _parts(victim, "after")[QUERY_API]["count"] == 0
    assert victim["evidence"]["after"]["missing_count"] == victim["evidence"]["before"]["count"]


def test_a_crash_while_the_async_job_runs_resumes_polling_the_same_job(deprov: Engine) -> None:
    _deep(deprov)
    deprov.sandbox.faults(async_job_delay_s=1.5)
    first, _ = deprov.build()
    uid = _with_old_history(deprov, 200)
    (queued, _) = first.enqueue("delete", uid, requester=OKTA)
    job = _until_waiting_on_the_async_job(deprov, queued.id)
    assert job.access_cut
    assert (job.state, job.step, job.waiting_on) == ("waiting", "verify_before", "history-job")
    assert job.history.pending is not None
    submitted = job.history.pending.job_id
    assert [j["jobId"] for j in deprov.sandbox.async_jobs()] == [submitted]

    # The process dies here. Another one (nothing shared but the database) carries on.
    _, worker = deprov.build(history_job_poll_s=0.05)
    done = finish(worker, job.id)
    assert done.state == "done"
    lake = _parts(jobs.dump_data(done), "before")[JOB_API]
    assert lake["job_id"] == submitted
    verify_before_jobs = [j for j in deprov.sandbox.async_jobs() if j["jobId"] == submitted]
    assert len(verify_before_jobs) == 1
    assert len(deprov.sandbox.async_jobs()) == 1  # the check after reads by id


def test_an_async_job_that_expired_meanwhile_is_submitted_again(deprov: Engine) -> None:
    _deep(deprov)
    deprov.sandbox.faults(async_job_delay_s=1.5)
    first, _ = deprov.build()
    uid = _with_old_history(deprov, 200)
    (queued, _) = first.enqueue("delete", uid, requester=OKTA)
    job = _until_waiting_on_the_async_job(deprov, queued.id)
    assert job.history.pending is not None
    expired = job.history.pending.job_id
    deprov.sandbox.expire_async_job(expired)  # down for longer than the results live

    _, worker = deprov.build(history_job_poll_s=0.05)
    done = finish(worker, job.id)
    assert done.state == "done"
    lake = _parts(jobs.dump_data(done), "before")[JOB_API]
    assert lake["job_id"] != expired
    steps = [
        e.detail
        for e in deprov.audit.events(job_id=done.id)
        if e.detail.get("lost_before", "").startswith("EXPIRED")
    ]
    assert steps  # the audit trail says the expired job was replaced


def test_failed_async_jobs_are_resubmitted_then_the_job_is_held(deprov: Engine) -> None:
    _deep(deprov)
    deprov.sandbox.faults(async_job_outcomes=["FAILED", "FAILED", "EXPIRED"])
    service, worker = deprov.build(history_job_resubmits=2)
    uid = _with_old_history(deprov, 200)
    job = finish(worker, service.request("delete", uid, requester=OKTA).job_id)
    assert (job.state, job.step) == ("held", "verify_before")
    assert job.reason == "history-job-lost: async history job EXPIRED"
    assert deprov.sandbox.user(uid)["state"] == "inactive"  # access cut, nothing deleted
    assert [j["state"] for j in deprov.sandbox.async_jobs()] == ["FAILED", "FAILED", "EXPIRED"]
    assert job.history.pending is None

    # A retry by an operator submits a new one, which succeeds this time.
    service.retry(job.id, actor="alice")
    again = finish(worker, job.id)
    assert again.state == "done"


def test_mass_offboarding_shares_one_async_job_per_side(deprov: Engine) -> None:
    _deep(deprov, users_=60)
    service, worker = deprov.build()
    ids = users(deprov.sandbox, deprov.gateway)[:30]
    counts = {u: deprov.sandbox.user(u)["conversationCount"] for u in ids}
    job_ids = [service.enqueue("delete", uid, requester=OKTA)[0].id for uid in ids]
    for job_id in job_ids:
        finish(worker, job_id)
    found = [jobs.find(deprov.engine, j) for j in job_ids]
    assert [j.state for j in found if j is not None] == ["done"] * len(ids)
    submitted = deprov.sandbox.async_jobs()
    # One job for the 30 checks before (a round that crossed a minute makes two windows: one
    # more at most); the checks after read the ids found before back by id, several users a call.
    assert 1 <= len(submitted) <= 2
    assert max(len(j["userIds"]) for j in submitted) >= 15
    for job in found:
        assert job is not None
        data = jobs.dump_data(job)
        assert data["evidence"]["before"]["count"] == counts[job.user_id]
        assert _parts(data, "before")[JOB_API]["users"] >= 15
        after = _parts(data, "after")[BY_ID_API]
        assert after["count"] == counts[job.user_id]
        assert after["users"] >= 2


def test_checks_reaching_verify_before_in_different_rounds_share_one_async_job(
    deprov: Engine,
) -> None:
    """The worker gathers verify_before checks (HISTORY_BATCH_WINDOW) while other deletes are on
    their way to theirs: users that reach the check in different rounds go into one async job
    (issue 11), submitted as soon as nobody else is coming. The window (10 minutes) never ends
    within the test: no wall-clock race."""
    _deep(deprov, users_=40)
    service, worker = deprov.build(history_batch_window_s=600.0)
    worker.batch = 3  # three jobs a round: the other three are still on their way
    ids = users(deprov.sandbox, deprov.gateway)[:6]
    job_ids = [service.enqueue("delete", uid, requester=OKTA)[0].id for uid in ids]
    worker.run_once()
    first = [jobs.find(deprov.engine, j) for j in job_ids]
    held = [j for j in first if j is not None and j.step == "verify_before"]
    assert len(held) == 3
    assert all(j.access_cut_at is not None for j in held)  # access cut: only the proof waits
    assert deprov.sandbox.async_jobs() == []
    worker.run_once()  # the other three reach the check: nobody else is coming
    assert len(deprov.sandbox.async_jobs()) == 1
    for job_id in job_ids:
        finish(worker, job_id)
    found = [jobs.find(deprov.engine, j) for j in job_ids]
    assert [j.state for j in found if j is not None] == ["done"] * len(ids)
    lake_jobs = {_parts(jobs.dump_data(j), "before")[JOB_API]["job_id"] for j in found if j}
    assert len(lake_jobs) == 1
    (submitted,) = [j for j in deprov.sandbox.async_jobs() if j["jobId"] in lake_jobs]
    assert sorted(submitted["userIds"]) == sorted(ids)


def test_a_stopping_worker_hands_back_the_checks_it_gathered(deprov: Engine) -> None:
    _deep(deprov, users_=40)
    service, worker = deprov.build(history_batch_window_s=600.0)
    worker.batch = 3
    job_ids = [
        service.enqueue("delete", uid, requester=OKTA)[0].id
        for uid in users(deprov.sandbox, deprov.gateway)[:6]
    ]
    worker.run_once()
    worker.stop()
    worker.run_until_idle(timeout_s=1)
    gathered = [jobs.find(deprov.engine, j) for j in job_ids]
    at_check = [j for j in gathered if j is not None and j.step == "verify_before"]
    assert len(at_check) == 3
    assert all(j.claimed_by is None for j in at_check)
    assert deprov.sandbox.async_jobs() == []
    _, next_worker = deprov.build(history_batch_window_s=0.0)
    for job_id in job_ids:
        assert finish(next_worker, job_id).state == "done"
    assert deprov.sandbox.async_jobs()


def test_the_admin_api_says_what_each_part_covered(deprov: Engine, db_url: str) -> None:
    """/admin/jobs/{id}: while waiting, the async job's id; once done, per side and part, the
    API, the window, the lake date, the count and digest, and the calls it took."""
    _deep(deprov)
    deprov.sandbox.faults(async_job_delay_s=1.5)
    service, _ = deprov.build()
    uid = _with_old_history(deprov, 200)
    job_id = _until_waiting_on_the_async_job(
        deprov, service.enqueue("delete", uid, requester=OKTA)[0].id
    ).id
    settings = Settings(
        genesys_api_host=deprov.sandbox.url,
        genesys_client_id=deprov.sandbox.client_id,
        genesys_client_secret=deprov.sandbox.client_secret,
        database_url=db_url,
        admin_token=ADMIN_TOKEN,
        worker_in_process=False,
    )
    app = create_app(settings)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        client = app.test_client()
        waiting = client.get(f"/admin/jobs/{job_id}", headers=auth).get_json()
        assert (waiting["state"], waiting["step"], waiting["waiting_on"]) == (
            "waiting",
            "verify_before",
            "history-job",
        ), waiting
        pending = waiting["data"]["history_pending"]
        assert pending["job_id"] == deprov.sandbox.async_jobs()[0]["jobId"]
        _, worker = deprov.build(history_job_poll_s=0.05)
        finish(worker, job_id)
        shown = client.get(f"/admin/jobs/{job_id}", headers=auth).get_json()
    finally:
        app.extensions["scim_bridge"].close()
    assert shown["state"] == "done"
    parts = {p["api"]: p for p in shown["evidence"]["before"]["parts"]}
    lake = parts["POST /api/v2/analytics/conversations/details/jobs"]
    tail = parts["POST /api/v2/analytics/conversations/details/query"]
    assert {"since", "until", "data_availability", "count", "sha256", "calls", "job_id"} <= set(
        lake
    )
    assert {"since", "until", "count", "sha256", "calls"} <= set(tail)
    (by_id,) = shown["evidence"]["after"]["parts"]
    assert by_id["api"] == "GET /api/v2/analytics/conversations/details"
    assert {"since", "until", "count", "sha256", "calls"} <= set(by_id)
    assert (by_id["since"], by_id["until"]) == (lake["since"], tail["until"])
    assert "history_before_lake_ids" not in shown["data"]
