"""The conversation details query: genesys-api.md 4.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api

PATH = "/api/v2/analytics/conversations/details/query"


def _interval(days_back: int, days: int) -> str:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days_back)
    end = start + timedelta(days=days)
    return f"{start:%Y-%m-%dT%H:%M:%S.000Z}/{end:%Y-%m-%dT%H:%M:%S.000Z}"


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


def _query(api: Api, **body: Any) -> Any:
    body.setdefault("interval", _interval(30, 31))
    return api.post(PATH, body)


def _all_for(api: Api, *user_ids: str) -> list[dict[str, Any]]:
    """Every conversation of the users over the 90 seeded days, in 31-day windows."""
    found: dict[str, dict[str, Any]] = {}
    for back in (31, 62, 93):
        page = 1
        while True:
            reply = _query(
                api,
                interval=_interval(back, 31),
                segmentFilters=_users_filter(*user_ids),
                paging={"pageSize": 100, "pageNumber": page},
            )
            assert reply.status == 200, reply.body
            if "conversations" not in reply.body:
                break
            found.update({c["conversationId"]: c for c in reply.body["conversations"]})
            page += 1
    return list(found.values())


def _agents(conversation: dict[str, Any]) -> set[str]:
    return {p["userId"] for p in conversation["participants"] if "userId" in p}


def test_user_history_matches_seed_4_1(api: Api, sandbox: Sandbox) -> None:
    counts = {u["id"]: sandbox.user(u["id"])["conversationCount"] for u in api.users("any")}
    assert any(c == 0 for c in counts.values())
    assert any(c >= 3 for c in counts.values())
    busiest = max(counts, key=lambda u: counts[u])
    conversations = _all_for(api, busiest)
    assert len(conversations) == counts[busiest]
    assert all(busiest in _agents(c) for c in conversations)


def test_several_users_in_one_query_4_1(api: Api, sandbox: Sandbox) -> None:
    users = [u["id"] for u in api.users()][:8]
    together = {c["conversationId"] for c in _all_for(api, *users)}
    apart = {c["conversationId"] for u in users for c in _all_for(api, u)}
    assert together == apart
    assert together


def test_conversation_shape_matches_sdk_models_4_1(api: Api) -> None:
    user = next(u for u in api.users() if _all_for(api, u["id"]))
    conversation = _all_for(api, user["id"])[0]
    assert {"conversationId", "conversationStart", "conversationEnd", "originatingDirection",
            "divisionIds", "participants"} <= set(conversation)  # fmt: skip
    assert conversation["originatingDirection"] in ("inbound", "outbound")
    agent = next(p for p in conversation["participants"] if p.get("userId") == user["id"])
    assert agent["purpose"] == "agent"
    assert {"participantId", "participantName", "sessions"} <= set(agent)
    session = agent["sessions"][0]
    assert {"sessionId", "mediaType", "direction", "segments"} <= set(session)
    segment = session["segments"][0]
    assert {"segmentStart", "segmentEnd", "segmentType"} <= set(segment)
    assert conversation["conversationStart"].endswith("Z")


def test_started_on_a_day_touched_by_the_interval_4_1(api: Api) -> None:
    some = _query(api, paging={"pageSize": 1}).body["conversations"][0]
    start = datetime.fromisoformat(some["conversationStart"]).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    narrow = (
        f"{start + timedelta(hours=23, minutes=59):%Y-%m-%dT%H:%M:%S.000Z}/"
        f"{start + timedelta(hours=23, minutes=59, seconds=30):%Y-%m-%dT%H:%M:%S.000Z}"
    )
    day = f"{start:%Y-%m-%dT%H:%M:%S.000Z}/{start + timedelta(days=1):%Y-%m-%dT%H:%M:%S.000Z}"
    a = _query(api, interval=narrow, paging={"pageSize": 100})
    b = _query(api, interval=day, paging={"pageSize": 100})
    assert a.body["totalHits"] == b.body["totalHits"] > 0
    assert some["conversationId"] in {c["conversationId"] for c in b.body["conversations"]}
    for c in b.body["conversations"]:
        assert c["conversationStart"].startswith(f"{start:%Y-%m-%d}")
    # An interval ending exactly at midnight does not touch the next day.
    before = f"{start - timedelta(days=1):%Y-%m-%dT%H:%M:%S.000Z}/{start:%Y-%m-%dT%H:%M:%S.000Z}"
    earlier = _query(api, interval=before, paging={"pageSize": 100}).body
    assert some["conversationId"] not in {
        c["conversationId"] for c in earlier.get("conversations", [])
    }


def test_interval_over_31_days_is_400_4_1(api: Api) -> None:
    assert _query(api, interval=_interval(40, 31)).status == 200
    reply = _query(api, interval=_interval(40, 32))
    assert reply.status == 400
    assert reply.code == "bad.request"
    assert _query(api, interval="yesterday").status == 400
    assert api.post(PATH, {"segmentFilters": []}).status == 400  # interval is required


@pytest.mark.parametrize("key", ["groupBy", "metrics", "metricNames", "filter", "granularity"])
def test_keys_a_details_query_lacks_are_400_4_1(api: Api, key: str) -> None:
    reply = _query(api, **{key: ["nConnected"]})
    assert reply.status == 400
    assert reply.code == "bad.request"
    assert key in reply.body["message"]


def test_conversations_key_omitted_past_the_end_4_1(api: Api) -> None:
    first = _query(api, paging={"pageSize": 100, "pageNumber": 1}).body
    assert first["totalHits"] > 0
    assert "conversations" in first
    beyond = _query(api, paging={"pageSize": 100, "pageNumber": 500}).body
    assert "conversations" not in beyond
    assert beyond["totalHits"] == first["totalHits"]
    nobody = _query(api, segmentFilters=_users_filter("00000000-0000-4000-8000-000000000000")).body
    assert nobody == {"totalHits": 0}


def test_page_size_cap_and_ordering_4_1(api: Api) -> None:
    assert _query(api, paging={"pageSize": 101}).status == 400
    asc = _query(api, paging={"pageSize": 100}).body["conversations"]
    starts = [c["conversationStart"] for c in asc]
    assert starts == sorted(starts)
    desc = _query(api, order="desc", paging={"pageSize": 100}).body["conversations"]
    assert [c["conversationStart"] for c in desc] == sorted(
        (c["conversationStart"] for c in desc), reverse=True
    )
    assert _query(api, orderBy="somethingElse").status == 400


def test_predicate_cap_4_1(api: Api) -> None:
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(101)]
    assert _query(api, segmentFilters=_users_filter(*ids[:100])).status == 200
    assert _query(api, segmentFilters=_users_filter(*ids)).status == 400


def test_active_conversation_has_no_end_4_1(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    sandbox.set_conversation(user["id"], active=True)
    today = _interval(0, 1)
    open_only = [
        {
            "type": "and",
            "predicates": [
                {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}
            ],
        }
    ]
    reply = _query(
        api, interval=today, segmentFilters=_users_filter(user["id"]), conversationFilters=open_only
    ).body
    assert reply["totalHits"] == 1
    assert "conversationEnd" not in reply["conversations"][0]
    sandbox.set_conversation(user["id"], active=False)
    ended = _query(api, interval=today, segmentFilters=_users_filter(user["id"])).body
    assert "conversationEnd" in ended["conversations"][0]
    assert _query(
        api, interval=today, segmentFilters=_users_filter(user["id"]), conversationFilters=open_only
    ).body == {"totalHits": 0}


def test_deleted_users_history_stays_2_4(api: Api, sandbox: Sandbox) -> None:
    user = next(u for u in api.users() if sandbox.user(u["id"])["conversationCount"])
    before = {c["conversationId"] for c in _all_for(api, user["id"])}
    api.delete(f"/api/v2/users/{user['id']}")
    assert {c["conversationId"] for c in _all_for(api, user["id"])} == before


def test_purge_history_on_delete_fault(api: Api, sandbox: Sandbox) -> None:
    user = next(u for u in api.users() if sandbox.user(u["id"])["conversationCount"])
    sandbox.faults(purge_history_on_delete=True)
    api.delete(f"/api/v2/users/{user['id']}")
    assert _all_for(api, user["id"]) == []
    assert sandbox.user(user["id"])["conversationCount"] == 0


def test_analytics_permission_5_5(api: Api, sandbox: Sandbox) -> None:
    sandbox.add_client("agent-view", "s", ["analytics:agentConversationDetail:view"])
    sandbox.add_client("none", "s", ["directory:user:view"])
    ok = api.login("agent-view", "s").body["access_token"]
    assert api.post(PATH, {"interval": _interval(30, 31)}, token=ok).status == 200
    denied = api.login("none", "s").body["access_token"]
    reply = api.post(PATH, {"interval": _interval(30, 31)}, token=denied)
    assert reply.status == 403
    assert reply.code == "missing.any.permissions"


BY_ID = "/api/v2/analytics/conversations/details"


def test_conversations_by_id_either_list_form_and_at_most_100(api: Api, sandbox: Sandbox) -> None:
    """``get_analytics_conversations_details``: the conversations asked for, as the details
    query shows them; ``a,b`` or repeated keys (genesys-api.md 1.5); an unknown id is left out;
    no id, or more than 100 (UNCONFIRMED limit, the stricter reading), is a 400."""
    user = max(api.users(), key=lambda u: sandbox.user(u["id"])["conversationCount"])
    shown = {c["conversationId"]: c for c in _all_for(api, user["id"])}
    ids = sorted(shown)[:3]
    unknown = "00000000-0000-4000-8000-00000000beef"
    joined = api.get(BY_ID, fields={"id": ",".join([*ids, unknown])})
    repeated = api.get(BY_ID, fields=[("id", i) for i in [*ids, unknown]])
    assert joined.status == repeated.status == 200
    assert joined.body == repeated.body
    assert sorted(c["conversationId"] for c in joined.body["conversations"]) == ids
    for conversation in joined.body["conversations"]:
        assert conversation == shown[conversation["conversationId"]]
    assert api.get(BY_ID).status == 400
    many = [f"00000000-0000-4000-8000-{i:012d}" for i in range(101)]
    assert api.get(BY_ID, fields={"id": ",".join(many)}).status == 400


def test_conversations_by_id_after_a_purge_lack_the_user(api: Api, sandbox: Sandbox) -> None:
    user = next(u for u in api.users() if sandbox.user(u["id"])["conversationCount"])
    ids = [c["conversationId"] for c in _all_for(api, user["id"])]
    sandbox.faults(purge_history_on_delete=True)
    api.delete(f"/api/v2/users/{user['id']}")
    read = api.get(BY_ID, fields={"id": ",".join(ids[:100])})
    assert read.status == 200
    assert all(user["id"] not in _agents(c) for c in read.body.get("conversations", []))
