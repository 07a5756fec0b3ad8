"""POST /api/v2/users/search: genesys-api.md 2.6 (and 2.4 for deleted users and index lag)."""

from __future__ import annotations

import time
from typing import Any

from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api


def _search(api: Api, query: list[dict[str, Any]], **extra: Any) -> Any:
    return api.post("/api/v2/users/search", {"query": query, **extra})


def _ids(reply: Any) -> list[str]:
    return [u["id"] for u in reply.body.get("results", [])]


def test_exact_email_case_insensitive_2_6(api: Api) -> None:
    user = api.a_user()
    reply = _search(api, [{"type": "EXACT", "fields": ["email"], "value": user["email"].upper()}])
    assert reply.status == 200
    assert _ids(reply) == [user["id"]]
    assert reply.body["total"] == 1
    assert reply.body["types"] == ["users"]


def test_starts_with_and_contains_2_6(api: Api) -> None:
    user = api.a_user()
    first = user["name"].split()[0]
    starts = _search(api, [{"type": "STARTS_WITH", "fields": ["name"], "value": first.lower()}])
    assert user["id"] in _ids(starts)
    assert all(u["name"].lower().startswith(first.lower()) for u in starts.body["results"])
    local = user["email"].split("@")[0][2:]
    contains = _search(api, [{"type": "CONTAINS", "fields": ["email", "name"], "value": local}])
    assert user["id"] in _ids(contains)


def test_values_list_and_or_operator_2_6(api: Api) -> None:
    a, b = api.users()[:2]
    by_values = _search(api, [{"type": "EXACT", "fields": ["id"], "values": [a["id"], b["id"]]}])
    assert sorted(_ids(by_values)) == sorted([a["id"], b["id"]])
    by_or = _search(
        api,
        [
            {"type": "EXACT", "fields": ["email"], "value": a["email"], "operator": "OR"},
            {"type": "EXACT", "fields": ["email"], "value": b["email"], "operator": "OR"},
        ],
    )
    assert sorted(_ids(by_or)) == sorted([a["id"], b["id"]])


def test_and_not_and_nested_group_2_6(api: Api) -> None:
    users = api.users()
    department = users[0]["department"]
    same = [u["id"] for u in users if u.get("department") == department]
    query = [
        {"type": "EXACT", "fields": ["department"], "value": department},
        {"type": "EXACT", "fields": ["id"], "value": users[0]["id"], "operator": "NOT"},
    ]
    assert sorted(_ids(_search(api, query, pageSize=100))) == sorted(set(same) - {users[0]["id"]})
    nested = [
        {
            "operator": "AND",
            "group": [
                {"type": "EXACT", "fields": ["id"], "value": users[1]["id"], "operator": "OR"},
                {"type": "EXACT", "fields": ["id"], "value": users[2]["id"], "operator": "OR"},
            ],
        }
    ]
    assert sorted(_ids(_search(api, nested))) == sorted([users[1]["id"], users[2]["id"]])


def test_manager_and_employee_id_fields_2_6(api: Api) -> None:
    with_manager = next(u for u in api.users() if "manager" in u)
    manager_id = with_manager["manager"]["id"]
    reports = _search(api, [{"type": "EXACT", "fields": ["manager"], "value": manager_id}])
    assert with_manager["id"] in _ids(reports)
    employee_id = with_manager["employerInfo"]["employeeId"]
    for field in ("employerInfo.employeeId", "employeeId"):
        found = _search(api, [{"type": "EXACT", "fields": [field], "value": employee_id}])
        assert _ids(found) == [with_manager["id"]]


def test_default_search_returns_only_active_users_2_6(api: Api) -> None:
    inactive = api.a_user("inactive")
    query = [{"type": "EXACT", "fields": ["email"], "value": inactive["email"]}]
    assert "results" not in _search(api, query).body
    explicit = [*query, {"type": "EXACT", "fields": ["state"], "values": ["active", "inactive"]}]
    assert _ids(_search(api, explicit)) == [inactive["id"]]


def test_deleted_users_only_when_state_asks_2_4(api: Api) -> None:
    user = api.a_user()
    api.delete(f"/api/v2/users/{user['id']}")
    email = [{"type": "EXACT", "fields": ["email"], "value": user["email"]}]
    assert _search(api, email).body["total"] == 0
    not_deleted = [*email, {"type": "EXACT", "fields": ["state"], "values": ["active", "inactive"]}]
    assert _search(api, not_deleted).body["total"] == 0
    # The lookup TF uses to find a deleted user (genesys-api.md 2.6).
    deleted = [*email, {"type": "EXACT", "fields": ["state"], "values": ["deleted"]}]
    reply = _search(api, deleted)
    assert _ids(reply) == [user["id"]]
    assert reply.body["results"][0]["state"] == "deleted"


def test_search_pages_in_name_order_2_6(api: Api) -> None:
    everyone = [u["id"] for u in api.users()]
    match_all = [{"type": "MATCH_ALL"}]
    seen: list[str] = []
    for page in (1, 2, 3):
        reply = _search(api, match_all, pageSize=5, pageNumber=page)
        assert reply.body["pageSize"] == 5
        assert reply.body["total"] == len(everyone)
        seen.extend(_ids(reply))
    assert seen == everyone[:15]
    assert "results" not in _search(api, match_all, pageSize=5, pageNumber=99).body


def test_search_validation_is_strict_2_6(api: Api) -> None:
    assert _search(api, [{"type": "EXACT", "fields": ["shoeSize"], "value": "9"}]).status == 400
    assert _search(api, [{"type": "REGEX", "fields": ["name"], "value": ".*"}]).status == 400
    assert _search(api, [{"fields": ["name"], "value": "x"}]).status == 400
    assert _search(api, [{"type": "EXACT", "fields": ["name"]}]).status == 400
    assert (
        _search(
            api, [{"type": "EXACT", "fields": ["name"], "value": "x", "operator": "XOR"}]
        ).status
        == 400
    )
    assert _search(api, [], pageSize=101).status == 400
    assert api.post("/api/v2/users/search", {"query": [], "filter": "x"}).status == 400


def test_search_needs_directory_user_view_5_5(api: Api, sandbox: Sandbox) -> None:
    sandbox.add_client("nothing", "s", [])
    token = api.login("nothing", "s").body["access_token"]
    reply = api.post("/api/v2/users/search", {"query": []}, token=token)
    assert reply.status == 403
    assert "directory:user:view" in reply.body["message"]


def test_search_index_lags_behind_changes_2_4(api: Api, sandbox: Sandbox) -> None:
    sandbox.faults(search_lag_s=0.5)
    user = api.a_user()
    api.delete(f"/api/v2/users/{user['id']}")
    deleted = [
        {"type": "EXACT", "fields": ["email"], "value": user["email"]},
        {"type": "EXACT", "fields": ["state"], "values": ["deleted"]},
    ]
    assert _search(api, deleted).body["total"] == 0
    assert _ids(_search(api, [{"type": "EXACT", "fields": ["id"], "value": user["id"]}])) == [
        user["id"]
    ]
    time.sleep(0.6)
    assert _ids(_search(api, deleted)) == [user["id"]]
    created = api.post(
        "/api/v2/users", {"name": "Lagging", "email": "lag@example.com", "state": "active"}
    ).body
    by_email = [{"type": "EXACT", "fields": ["email"], "value": "lag@example.com"}]
    assert _search(api, by_email).body["total"] == 0
    time.sleep(0.6)
    assert _ids(_search(api, by_email)) == [created["id"]]
