"""The seeded org's deep history, ``oldestConversationAt``, and purging only old conversations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scim_bridge.sandbox import SandboxConfig
from scim_bridge.sandbox.seed import build_org
from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api
from tests.sandbox.test_async_jobs import _results, _submit, _sync_all, _wait

DAY = 86400.0


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_default_org_goes_back_three_years_sparse_before_90_days() -> None:
    now = datetime.now(UTC).timestamp()
    org = build_org(200, 1, now, SandboxConfig().history_days)
    starts = [c.start for c in org.conversations.values()]
    assert min(starts) < now - 2 * 365 * DAY  # "two years or more"
    old = sum(1 for s in starts if s < now - 91 * DAY)
    recent = len(starts) - old
    assert 0 < old < recent / 2  # sparse in the old part
    assert all(s < now - now % DAY for s in starts)  # nothing today (genesys-api.md 4.1)


def test_deep_history_changes_nothing_else_in_the_org() -> None:
    now = datetime.now(UTC).timestamp()
    shallow, deep = build_org(50, 7, now, 90), build_org(50, 7, now, 1095)
    assert list(shallow.users) == list(deep.users)
    assert list(shallow.queues) == list(deep.queues)
    assert list(shallow.groups) == list(deep.groups)
    assert set(shallow.conversations) < set(deep.conversations)


def test_oldest_conversation_at(sandbox: Sandbox, api: Api) -> None:
    sandbox.reset(history_days=1095)
    assert sandbox.info()["history_days"] == 1095
    api.relogin()
    records = [sandbox.user(u["id"]) for u in api.users("any")]
    with_history = [r for r in records if r["conversationCount"]]
    assert all(r["oldestConversationAt"] is None for r in records if not r["conversationCount"])
    oldest = min(_parse(r["oldestConversationAt"]) for r in with_history)
    assert oldest < datetime.now(UTC) - timedelta(days=730)


def test_purge_only_history_older_than_days(sandbox: Sandbox, api: Api) -> None:
    """With 120, only conversations older than 120 days lose the user's id: what a check over
    the last 90 days can never notice."""
    sandbox.reset(history_days=1095)
    sandbox.faults(async_job_delay_s=0.05, data_availability_lag_s=0)
    api.relogin()
    cutoff = datetime.now(UTC) - timedelta(days=120)
    user = next(
        u
        for u in api.users()
        if (oldest := sandbox.user(u["id"])["oldestConversationAt"])
        and _parse(oldest) < cutoff
        and _sync_all(api, u["id"], 90)
    )
    recent = _sync_all(api, user["id"], 90)
    before = sandbox.user(user["id"])["conversationCount"]
    assert before > len(recent)
    sandbox.faults(purge_history_on_delete=True, purge_history_older_than_days=120)
    assert api.delete(f"/api/v2/users/{user['id']}").status == 200
    assert _sync_all(api, user["id"], 90) == recent
    record = sandbox.user(user["id"])
    assert record["conversationCount"] == len(recent)
    assert _parse(record["oldestConversationAt"]) > cutoff
    job_id = _submit(api, user["id"])
    _wait(api, job_id)
    found, _ = _results(api, job_id)
    assert {c["conversationId"] for c in found} == recent
