"""History evidence through the analytics details query (genesys-api.md 4.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scim_bridge.genesys import history
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import HistoryQuery
from tests.genesys.helpers import Recorder, served

DETAILS = "POST /api/v2/analytics/conversations/details/query"


def _window(days: int = 91) -> tuple[datetime, datetime]:
    until = datetime.now(UTC)
    return until - timedelta(days=days), until


def test_intervals_are_at_most_30_days() -> None:
    since = datetime(2024, 1, 1, tzinfo=UTC)
    parts = history.intervals(since, since + timedelta(days=91))
    assert parts == [
        "2024-01-01T00:00:00.000Z/2024-01-31T00:00:00.000Z",
        "2024-01-31T00:00:00.000Z/2024-03-01T00:00:00.000Z",
        "2024-03-01T00:00:00.000Z/2024-03-31T00:00:00.000Z",
        "2024-03-31T00:00:00.000Z/2024-04-01T00:00:00.000Z",
    ]
    assert history.intervals(since, since) == []


def test_the_query_body_has_only_details_query_keys() -> None:
    body = history.query_body("a/b", ["u1", "u2"], 3)
    assert set(body) == {"interval", "order", "orderBy", "paging", "segmentFilters"}
    assert body["paging"] == {"pageSize": 100, "pageNumber": 3}
    (segment_filter,) = body["segmentFilters"]
    assert segment_filter["type"] == "or"
    assert [p["value"] for p in segment_filter["predicates"]] == ["u1", "u2"]
    assert {p["dimension"] for p in segment_filter["predicates"]} == {"userId"}


def _users_with_history(gateway: SdkGateway, sandbox, count: int) -> dict[str, int]:
    counts = {}
    for user in gateway.list_users(page_size=100).items:
        conversations = sandbox.user(user.id)["conversationCount"]
        if conversations:
            counts[user.id] = conversations
        if len(counts) == count:
            break
    return counts


def test_history_of_several_users_in_one_query_per_interval(gateway: SdkGateway, sandbox) -> None:
    expected = _users_with_history(gateway, sandbox, 5)
    since, until = _window()
    result = gateway.conversation_history(HistoryQuery(tuple(expected), since, until))
    assert {uid: len(ids) for uid, ids in result.conversations.items()} == expected
    # One batch of users; each interval paged until "conversations" is omitted.
    assert result.queries_made == served(sandbox.stats(), DETAILS, 200)
    # at least one query per interval, and one more past the last page of an interval with data
    assert result.queries_made > len(history.intervals(since, until))


def test_an_unknown_user_has_an_empty_history(gateway: SdkGateway) -> None:
    since, until = _window(10)
    missing = "00000000-0000-0000-0000-000000000000"
    result = gateway.conversation_history(HistoryQuery((missing,), since, until))
    assert result.conversations == {missing: frozenset()}


def test_a_deleted_users_history_stays(gateway: SdkGateway, sandbox) -> None:
    expected = _users_with_history(gateway, sandbox, 1)
    (user_id,) = expected
    since, until = _window()
    before = gateway.conversation_history(HistoryQuery((user_id,), since, until))
    gateway.delete_user(user_id)
    after = gateway.conversation_history(HistoryQuery((user_id,), since, until))
    assert after.conversations == before.conversations
    assert len(after.conversations[user_id]) == expected[user_id]


def test_more_than_100_users_are_batched(gateway: SdkGateway, sandbox) -> None:
    """At most 100 predicates a query (the sandbox's stricter reading)."""
    sandbox.reset(users=150, seed=1)
    everyone = [u.id for u in gateway.list_users(page_size=100).items] + [
        u.id for u in gateway.list_users(page_size=100, page_number=2).items
    ]
    assert len(everyone) == 150
    recorder = Recorder()
    gateway.add_observer(recorder)
    since, until = _window(20)
    result = gateway.conversation_history(HistoryQuery(tuple(everyone), since, until))
    assert set(result.conversations) == set(everyone)
    assert recorder.statuses("/api/v2/analytics/conversations/details/query") == [200] * (
        result.queries_made
    )
    total = sum(len(ids) for ids in result.conversations.values())
    assert total > 0
