"""Async conversation details jobs and the data lake: genesys-api.md 4.3 (sandbox/jobs.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api, Reply

JOBS = "/api/v2/analytics/conversations/details/jobs"
QUERY = "/api/v2/analytics/conversations/details/query"
DEEP = 1095  # days of seeded history in the deep org


def _at(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _whole_history() -> str:
    now = datetime.now(UTC)
    return f"{_at(now - timedelta(days=DEEP + 5))}/{_at(now)}"


def _users_filter(*user_ids: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "or",
            "predicates": [
                {"type": "dimension", "dimension": "userId", "operator": "matches", "value": u}
                for u in user_ids
            ],
        }
    ]


def _submit(api: Api, *user_ids: str, **body: Any) -> str:
    body.setdefault("interval", _whole_history())
    if user_ids:
        body.setdefault("segmentFilters", _users_filter(*user_ids))
    reply = api.post(JOBS, body)
    assert reply.status == 202, reply.body
    assert set(reply.body) == {"jobId"}
    return str(reply.body["jobId"])


def _wait(api: Api, job_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = api.get(f"{JOBS}/{job_id}")
        assert status.status == 200, status.body
        if status.body["state"] not in ("QUEUED", "PENDING"):
            return dict(status.body)
        assert time.monotonic() < deadline, status.body
        time.sleep(0.02)


def _results(
    api: Api, job_id: str, page_size: int = 100
) -> tuple[list[dict[str, Any]], list[Reply]]:
    """Every page by cursor until a page carries none."""
    pages: list[Reply] = []
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        fields: dict[str, Any] = {"pageSize": page_size}
        if cursor:
            fields["cursor"] = cursor
        reply = api.get(f"{JOBS}/{job_id}/results", fields=fields)
        assert reply.status == 200, reply.body
        pages.append(reply)
        found.extend(reply.body.get("conversations", []))
        cursor = reply.body.get("cursor")
        if not cursor:
            return found, pages


def _sync_all(api: Api, user_id: str, days: int) -> set[str]:
    """Ids the synchronous query finds for the user over the last ``days`` days (31-day slices)."""
    now = datetime.now(UTC)
    ids: set[str] = set()
    start = now - timedelta(days=days)
    while start < now:
        end = min(start + timedelta(days=30), now)
        page = 1
        while True:
            reply = api.post(
                QUERY,
                {
                    "interval": f"{_at(start)}/{_at(end)}",
                    "segmentFilters": _users_filter(user_id),
                    "paging": {"pageSize": 100, "pageNumber": page},
                },
            )
            assert reply.status == 200, reply.body
            if "conversations" not in reply.body:
                break
            ids.update(c["conversationId"] for c in reply.body["conversations"])
            page += 1
        start = end
    return ids


@pytest.fixture
def deep(sandbox: Sandbox, api: Api) -> Api:
    """The org with three years of history, jobs done in a tenth of a second, no lake lag."""
    sandbox.reset(history_days=DEEP)
    sandbox.faults(async_job_delay_s=0.1, data_availability_lag_s=0)
    api.relogin()
    return api


def _busiest(api: Api, sandbox: Sandbox) -> dict[str, Any]:
    users = api.users("any")
    return max(users, key=lambda u: sandbox.user(u["id"])["conversationCount"])


def test_job_goes_queued_then_pending_then_fulfilled_4_3(api: Api, sandbox: Sandbox) -> None:
    sandbox.faults(async_job_delay_s=3)
    job_id = _submit(api, api.a_user()["id"])
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while not seen or seen[-1] in ("QUEUED", "PENDING"):
        state = api.get(f"{JOBS}/{job_id}").body["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert seen == ["QUEUED", "PENDING", "FULFILLED"]
    status = api.get(f"{JOBS}/{job_id}").body
    submitted, completed = _parse(status["submissionDate"]), _parse(status["completionDate"])
    assert timedelta(seconds=2.9) <= completed - submitted <= timedelta(seconds=3.1)
    assert _parse(status["expirationDate"]) - completed == timedelta(days=1)


def test_results_page_by_cursor_until_none_4_3(deep: Api, sandbox: Sandbox) -> None:
    user = _busiest(deep, sandbox)
    record = sandbox.user(user["id"])
    job_id = _submit(deep, user["id"])
    assert _wait(deep, job_id)["state"] == "FULFILLED"
    found, pages = _results(deep, job_id, page_size=2)
    assert len(pages) == (len(found) + 1) // 2
    assert all("cursor" in p.body for p in pages[:-1])
    assert "cursor" not in pages[-1].body
    ids = [c["conversationId"] for c in found]
    assert len(ids) == len(set(ids)) == record["conversationCount"] >= 3
    assert all(user["id"] in {p.get("userId") for p in c["participants"]} for c in found)
    assert min(_parse(c["conversationStart"]) for c in found) == _parse(
        record["oldestConversationAt"]
    )
    lake = {p.body["dataAvailabilityDate"] for p in pages}
    assert len(lake) == 1


def test_a_job_with_nothing_found_has_one_page_without_conversations(deep: Api) -> None:
    job_id = _submit(deep, "00000000-0000-4000-8000-000000000000")
    _wait(deep, job_id)
    found, pages = _results(deep, job_id)
    assert found == []
    assert len(pages) == 1
    assert set(pages[0].body) == {"dataAvailabilityDate"}


def test_one_job_serves_many_users_4_3(deep: Api, sandbox: Sandbox) -> None:
    users = [u["id"] for u in deep.users("any")]
    job_id = _submit(deep, *users)
    _wait(deep, job_id)
    found, _ = _results(deep, job_id)
    per_user = dict.fromkeys(users, 0)
    for conversation in found:
        for participant in conversation["participants"]:
            if participant.get("userId") in per_user:
                per_user[participant["userId"]] += 1
    assert per_user == {u: sandbox.user(u)["conversationCount"] for u in users}
    assert sandbox.async_jobs()[0]["userIds"] == users


def test_availability_lags_now_and_the_lake_holds_only_what_ended_before_it_4_3(
    deep: Api, sandbox: Sandbox
) -> None:
    sandbox.faults(data_availability_lag_s=20 * 86400)
    reply = deep.get(f"{JOBS}/availability")
    assert reply.status == 200
    available = _parse(reply.body["dataAvailabilityDate"])
    assert abs(datetime.now(UTC) - timedelta(days=20) - available) < timedelta(seconds=5)

    user = _busiest(deep, sandbox)
    job_id = _submit(deep, user["id"])
    _wait(deep, job_id)
    found, pages = _results(deep, job_id)
    assert all(_parse(c["conversationEnd"]) <= available for c in found)
    assert abs(_parse(pages[0].body["dataAvailabilityDate"]) - available) < timedelta(seconds=5)
    # What the lake does not hold yet, the synchronous query does: together they are everything.
    recent = _sync_all(deep, user["id"], 21)
    assert {c["conversationId"] for c in found} | recent == set(
        _results_ids_everything(deep, sandbox, user["id"])
    )


def _results_ids_everything(api: Api, sandbox: Sandbox, user_id: str) -> set[str]:
    sandbox.faults(data_availability_lag_s=0)
    job_id = _submit(api, user_id)
    _wait(api, job_id)
    found, _ = _results(api, job_id)
    assert len(found) == sandbox.user(user_id)["conversationCount"]
    return {c["conversationId"] for c in found}


def test_a_running_conversation_is_not_in_the_lake_4_3(deep: Api, sandbox: Sandbox) -> None:
    user = deep.a_user()
    sandbox.set_conversation(user["id"], active=True)
    live = sandbox.user(user["id"])["activeConversationId"]
    job_id = _submit(deep, user["id"])
    _wait(deep, job_id)
    found, _ = _results(deep, job_id)
    assert live not in {c["conversationId"] for c in found}


def test_jobs_include_conversations_active_during_the_interval_4_3(
    deep: Api, sandbox: Sandbox
) -> None:
    """ "Results will include all conversations that had activity during the interval"
    (AsyncConversationQuery.interval): one that started before the interval and ended in it is
    in; one that ended before it is not."""
    user = _busiest(deep, sandbox)
    job_id = _submit(deep, user["id"])
    _wait(deep, job_id)
    found, _ = _results(deep, job_id)
    target = found[len(found) // 2]
    start, end = _parse(target["conversationStart"]), _parse(target["conversationEnd"])
    inside = f"{_at(start + (end - start) / 2)}/{_at(end + timedelta(seconds=1))}"
    after = f"{_at(end + timedelta(milliseconds=5))}/{_at(end + timedelta(seconds=2))}"
    ids = {}
    for name, interval in (("inside", inside), ("after", after)):
        job = _submit(deep, user["id"], interval=interval)
        _wait(deep, job)
        ids[name] = {c["conversationId"] for c in _results(deep, job)[0]}
    assert target["conversationId"] in ids["inside"]
    assert target["conversationId"] not in ids["after"]
    by_day = _submit(deep, user["id"], interval=inside, startOfDayIntervalMatching=True)
    _wait(deep, by_day)
    assert target["conversationId"] in {c["conversationId"] for c in _results(deep, by_day)[0]}


def test_failed_and_expired_can_be_injected_4_3(deep: Api, sandbox: Sandbox) -> None:
    sandbox.faults(async_job_outcomes=["FAILED", "EXPIRED"])
    user = deep.a_user()["id"]
    failed, expired, fulfilled = (_submit(deep, user) for _ in range(3))
    status = _wait(deep, failed)
    assert status["state"] == "FAILED"
    assert status["errorMessage"]
    assert deep.get(f"{JOBS}/{failed}/results").status == 400
    assert _wait(deep, expired)["state"] == "EXPIRED"
    reply = deep.get(f"{JOBS}/{expired}/results")
    assert (reply.status, reply.code) == (404, "not.found")
    assert _wait(deep, fulfilled)["state"] == "FULFILLED"
    sandbox.expire_async_job(fulfilled)
    assert deep.get(f"{JOBS}/{fulfilled}").body["state"] == "EXPIRED"
    assert deep.get(f"{JOBS}/{fulfilled}/results").status == 404


def test_results_expire_after_the_ttl_4_3(deep: Api, sandbox: Sandbox) -> None:
    sandbox.faults(async_job_ttl_s=0.3)
    job_id = _submit(deep, deep.a_user()["id"])
    assert _wait(deep, job_id)["state"] == "FULFILLED"
    time.sleep(0.4)
    assert deep.get(f"{JOBS}/{job_id}").body["state"] == "EXPIRED"


def test_results_before_fulfilled_are_refused(api: Api, sandbox: Sandbox) -> None:
    sandbox.faults(async_job_delay_s=60)
    job_id = _submit(api, api.a_user()["id"])
    reply = api.get(f"{JOBS}/{job_id}/results")
    assert (reply.status, reply.code) == (400, "bad.request")
    assert api.get(f"{JOBS}/not-a-job").status == 404


def test_concurrent_jobs_per_org_are_limited_unconfirmed_stricter(
    api: Api, sandbox: Sandbox
) -> None:
    """Maximum concurrency is UNCONFIRMED (genesys-api.md 4.3): one job over the limit is a 429
    without Retry-After; a finished or cancelled job frees its place."""
    sandbox.faults(async_job_delay_s=60, async_job_concurrency=2)
    user = api.a_user()["id"]
    first, _second = _submit(api, user), _submit(api, user)
    refused = api.post(JOBS, {"interval": _whole_history()})
    assert (refused.status, refused.code) == (429, "too.many.requests")
    assert "Retry-After" not in refused.headers
    assert api.delete(f"{JOBS}/{first}").status == 204
    assert api.get(f"{JOBS}/{first}").body["state"] == "CANCELLED"
    _submit(api, user)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"paging": {"pageSize": 10}}, "paging"),
        ({"interval": "2020-01-01T00:00:00Z/2026-01-01T00:00:00Z"}, "1827 days"),
        ({"orderBy": "conversationEnd"}, "orderBy"),
        ({"limit": 0}, "limit"),
        ({"startOfDayIntervalMatching": "yes"}, "startOfDayIntervalMatching"),
        ({"aggregations": []}, "aggregations"),
    ],
)
def test_job_bodies_are_checked_4_3(api: Api, body: dict[str, Any], message: str) -> None:
    body.setdefault("interval", _whole_history())
    reply = api.post(JOBS, body)
    assert (reply.status, reply.code) == (400, "bad.request")
    assert message in reply.body["message"]


def test_cursor_and_page_size_are_checked(deep: Api) -> None:
    job_id = _submit(deep, deep.a_user()["id"])
    _wait(deep, job_id)
    assert deep.get(f"{JOBS}/{job_id}/results", fields={"pageSize": 101}).status == 400
    assert deep.get(f"{JOBS}/{job_id}/results", fields={"cursor": "nonsense!"}).status == 400
    other = _submit(deep, deep.a_user()["id"])
    _wait(deep, other)
    _, pages = _results(deep, job_id, page_size=1)
    if len(pages) > 1:  # a cursor of one job is no good for another
        cursor = pages[0].body["cursor"]
        assert deep.get(f"{JOBS}/{other}/results", fields={"cursor": cursor}).status == 400


def test_job_permissions_5_5(api: Api, sandbox: Sandbox) -> None:
    sandbox.add_client("agent-view", "s", ["analytics:agentConversationDetail:view"])
    sandbox.add_client("detail-view", "s", ["analytics:conversationDetail:view"])
    sandbox.add_client("none", "s", ["directory:user:view"])
    agent = api.login("agent-view", "s").body["access_token"]
    detail = api.login("detail-view", "s").body["access_token"]
    none = api.login("none", "s").body["access_token"]
    body = {"interval": _whole_history()}
    assert api.post(JOBS, body, token=agent).status == 202
    assert api.post(JOBS, body, token=detail).status == 202
    assert api.post(JOBS, body, token=none).status == 403
    # availability needs analytics:conversationDetail:view (genesys-api.md 4.3)
    assert api.get(f"{JOBS}/availability", token=detail).status == 200
    reply = api.get(f"{JOBS}/availability", token=agent)
    assert (reply.status, reply.code) == (403, "missing.any.permissions")
