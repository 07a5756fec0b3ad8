"""History evidence through async details jobs (genesys-api.md 4.3), against the sandbox."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scim_bridge.genesys import history
from scim_bridge.genesys.errors import BadRequest, NotFound, PermissionDenied, RateLimited
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import HistoryJob
from tests.fixtures.genesys import MakeGateway
from tests.genesys.helpers import Recorder, served

JOBS = "/api/v2/analytics/conversations/details/jobs"
SUBMIT = f"POST {JOBS}"
STATUS = f"GET {JOBS}/<job_id>"
RESULTS = f"GET {JOBS}/<job_id>/results"
DEEP = 1095


@pytest.fixture
def deep(sandbox: Any) -> Any:
    """Three years of history; jobs done in 50 ms; no lake lag unless a test sets one."""
    sandbox.reset(history_days=DEEP)
    sandbox.faults(async_job_delay_s=0.05, data_availability_lag_s=0)
    return sandbox


def _window() -> tuple[datetime, datetime]:
    until = datetime.now(UTC)
    return until - timedelta(days=DEEP + 5), until


def _poll(gateway: SdkGateway, job_id: str, timeout_s: float = 10.0) -> HistoryJob:
    deadline = time.monotonic() + timeout_s
    job = gateway.history_job(job_id)
    while job.running:
        assert time.monotonic() < deadline
        time.sleep(0.02)
        job = gateway.history_job(job_id)
    return job


def _counts(sandbox: Any, gateway: SdkGateway) -> dict[str, int]:
    return {
        u.id: sandbox.user(u.id)["conversationCount"]
        for u in gateway.list_users(page_size=100).items
    }


def test_the_job_body_has_only_async_query_keys_4_3() -> None:
    since = datetime(2023, 1, 1, tzinfo=UTC)
    body = history.job_body(since, since + timedelta(days=1000), ["u1", "u2", "u1"])
    assert set(body) == {"interval", "order", "orderBy", "segmentFilters"}  # no paging (4.3)
    assert body["interval"] == "2023-01-01T00:00:00.000Z/2025-09-27T00:00:00.000Z"
    (segment_filter,) = body["segmentFilters"]
    assert [p["value"] for p in segment_filter["predicates"]] == ["u1", "u2"]
    with pytest.raises(ValueError, match="at most 100"):
        history.job_body(since, since + timedelta(days=1), [f"u{i}" for i in range(101)])
    with pytest.raises(ValueError, match="at least one"):
        history.job_body(since, since + timedelta(days=1), [])
    with pytest.raises(ValueError, match="end after"):
        history.job_body(since, since, ["u1"])


def test_one_job_finds_every_users_whole_history_4_3(gateway: SdkGateway, deep: Any) -> None:
    deep.reset(users=60, history_days=DEEP)
    deep.faults(async_job_delay_s=0.05, data_availability_lag_s=0)
    recorder = Recorder()
    gateway.add_observer(recorder)
    counts = _counts(deep, gateway)
    users = tuple(counts)
    job_id = gateway.submit_history_job(users, *_window())
    job = _poll(gateway, job_id)
    assert job.fulfilled
    assert job.submitted_at is not None
    assert job.completed_at is not None
    assert job.expires_at is not None
    assert job.completed_at <= job.expires_at
    results = gateway.history_job_results(job_id, users)
    assert {u: len(ids) for u, ids in results.conversations.items()} == counts
    distinct = set().union(*results.conversations.values())
    assert len(distinct) > history.JOB_RESULTS_PAGE_SIZE  # so that it took several pages
    stats = deep.stats()
    assert results.pages_read == served(stats, RESULTS, 200) == -(-len(distinct) // 100)
    assert served(stats, SUBMIT, 202) == 1
    assert [j["userIds"] for j in deep.async_jobs()] == [list(users)]
    endpoints = {r.endpoint for r in recorder.records}
    assert f"{JOBS}/{{jobId}}/results" in endpoints
    assert f"{JOBS}/{{jobId}}" in endpoints


def test_the_job_reaches_the_lake_and_availability_says_how_far_4_3(
    gateway: SdkGateway, deep: Any
) -> None:
    deep.faults(data_availability_lag_s=10 * 86400)
    reached = gateway.data_availability()
    assert abs(datetime.now(UTC) - timedelta(days=10) - reached) < timedelta(seconds=5)
    user = max(_counts(deep, gateway).items(), key=lambda kv: kv[1])[0]
    job_id = gateway.submit_history_job([user], *_window())
    _poll(gateway, job_id)
    results = gateway.history_job_results(job_id, [user])
    assert results.data_availability is not None
    assert abs(results.data_availability - reached) < timedelta(seconds=5)
    assert len(results.conversations[user]) <= deep.user(user)["conversationCount"]


def test_failed_expired_and_unknown_jobs_4_3(gateway: SdkGateway, deep: Any) -> None:
    deep.faults(async_job_outcomes=["FAILED", "EXPIRED"])
    user = gateway.list_users(page_size=1).items[0].id
    failed = gateway.submit_history_job([user], *_window())
    expired = gateway.submit_history_job([user], *_window())
    job = _poll(gateway, failed)
    assert (job.state, job.lost) == ("FAILED", True)
    assert job.error_message
    with pytest.raises(BadRequest):
        gateway.history_job_results(failed, [user])
    job = _poll(gateway, expired)
    assert (job.state, job.lost) == ("EXPIRED", True)
    with pytest.raises(NotFound):
        gateway.history_job_results(expired, [user])
    with pytest.raises(NotFound):
        gateway.history_job("00000000-0000-4000-8000-000000000000")


def test_a_result_page_that_fails_once_is_read_again(gateway: SdkGateway, deep: Any) -> None:
    user = gateway.list_users(page_size=1).items[0].id
    job_id = gateway.submit_history_job([user], *_window())
    _poll(gateway, job_id)
    deep.fail_next(f"{JOBS}/{job_id}/results", status=503, count=1)
    results = gateway.history_job_results(job_id, [user])
    assert len(results.conversations[user]) == deep.user(user)["conversationCount"]
    assert served(deep.stats(), RESULTS, 503) == 1


def test_the_orgs_limit_on_running_jobs_is_a_transient_rate_limit(
    make_gateway: MakeGateway, deep: Any
) -> None:
    """429 without Retry-After (the sandbox's stricter reading, UNCONFIRMED): backed off, and
    past the deadline ``RateLimited``, which callers treat as transient."""
    gateway = make_gateway()
    deep.faults(async_job_delay_s=60, async_job_concurrency=1)
    user = gateway.list_users(page_size=1).items[0].id
    first = gateway.submit_history_job([user], *_window())
    with pytest.raises(RateLimited) as caught:  # after the retry policy's attempts
        gateway.submit_history_job([user], *_window(), deadline=time.monotonic() + 20)
    assert caught.value.transient
    assert served(deep.stats(), SUBMIT, 429) >= 2  # backed off and tried again
    deep.expire_async_job(first)  # no longer running: its place is free
    assert gateway.submit_history_job([user], *_window())


def test_jobs_need_an_analytics_permission_5_5(make_gateway: MakeGateway, deep: Any) -> None:
    deep.add_client("reader", "reader-secret", ["directory:user:view"])
    gateway = make_gateway(client_id="reader", client_secret="reader-secret")
    with pytest.raises(PermissionDenied) as caught:
        gateway.submit_history_job(["u1"], *_window())
    assert "analytics:conversationDetail:view" in caught.value.message
    deep.add_client("agent", "agent-secret", ["analytics:agentConversationDetail:view"])
    agent = make_gateway(client_id="agent", client_secret="agent-secret")
    assert agent.submit_history_job(["u1"], *_window())
    with pytest.raises(PermissionDenied):  # availability: conversationDetail:view only (4.3)
        agent.data_availability()


# --- reading conversations again by id (GET /api/v2/analytics/conversations/details?id=) ----------
BY_ID = "GET /api/v2/analytics/conversations/details"


def test_conversations_by_id_says_which_are_still_attributed(
    gateway: SdkGateway, deep: Any
) -> None:
    """Each id read back with a participant carrying the user counts for that user; an id
    Genesys does not return counts for no one; 100 ids a call, one call a hundred."""
    deep.reset(users=60, history_days=DEEP)
    deep.faults(async_job_delay_s=0.05, data_availability_lag_s=0)
    counts = _counts(deep, gateway)
    users = tuple(counts)
    job_id = gateway.submit_history_job(users, *_window())
    _poll(gateway, job_id)
    found = gateway.history_job_results(job_id, users).conversations
    everything = sorted(set().union(*found.values()))
    assert len(everything) > history.MAX_IDS_BY_ID  # so that it takes several calls
    unknown = "00000000-0000-4000-8000-00000000beef"
    before = served(deep.stats(), BY_ID, 200)

    read = gateway.conversations_by_id([*everything, unknown, everything[0]], users)

    assert read.conversations == found
    assert read.calls == -(-(len(everything) + 1) // history.MAX_IDS_BY_ID)
    assert served(deep.stats(), BY_ID, 200) - before == read.calls
    # Only the users asked about, only the ids asked for.
    one = users[0]
    mine = sorted(found[one])[:3]
    alone = gateway.conversations_by_id(mine, [one])
    assert alone.conversations == {one: frozenset(mine)}
    assert alone.calls == 1
    assert gateway.conversations_by_id([], [one]).calls == 0


def test_conversations_by_id_sees_a_purge(gateway: SdkGateway, deep: Any) -> None:
    """purge_history_on_delete strips the user's id from the conversations the read by id
    returns: they come back without the user, so they are not found for them."""
    user = max(_counts(deep, gateway).items(), key=lambda kv: kv[1])[0]
    job_id = gateway.submit_history_job([user], *_window())
    _poll(gateway, job_id)
    ids = gateway.history_job_results(job_id, [user]).conversations[user]
    deep.faults(purge_history_on_delete=True, purge_history_older_than_days=0)
    gateway.delete_user(user)
    read = gateway.conversations_by_id(sorted(ids), [user])
    assert read.conversations[user] == frozenset()
