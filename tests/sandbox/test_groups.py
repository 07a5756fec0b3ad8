"""Groups: genesys-api.md section 7."""

from __future__ import annotations

from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api


def test_list_and_get_groups_7(api: Api) -> None:
    listing = api.get("/api/v2/groups").body
    assert listing["total"] == 4
    group = listing["entities"][0]
    assert group["type"] in ("official", "social")
    assert group["visibility"] in ("public", "owners", "members")
    assert api.get(f"/api/v2/groups/{group['id']}").body == group
    assert api.get("/api/v2/groups/nope").code == "not.found"


def test_create_update_delete_group_7(api: Api) -> None:
    created = api.post(
        "/api/v2/groups", {"name": "Tier 3", "type": "official", "visibility": "public"}
    )
    assert created.status == 200
    group = created.body
    assert group["memberCount"] == 0
    dup = api.post("/api/v2/groups", {"name": "tier 3", "type": "official", "visibility": "public"})
    assert dup.status == 409
    assert dup.code == "general.conflict"
    assert api.post("/api/v2/groups", {"name": "X", "type": "official"}).status == 400
    updated = api.put(
        f"/api/v2/groups/{group['id']}", {"name": "Tier Three", "version": group["version"]}
    )
    assert updated.status == 200
    assert updated.body["version"] == group["version"] + 1
    stale = api.put(f"/api/v2/groups/{group['id']}", {"name": "Late", "version": group["version"]})
    assert stale.status == 409
    assert api.put(f"/api/v2/groups/{group['id']}", {"name": "No version"}).status == 400
    assert api.delete(f"/api/v2/groups/{group['id']}").status == 200
    assert api.get(f"/api/v2/groups/{group['id']}").status == 404


def test_members_add_requires_current_version_and_remove_7(api: Api, sandbox: Sandbox) -> None:
    group = api.post(
        "/api/v2/groups", {"name": "G", "type": "social", "visibility": "members"}
    ).body
    users = [u["id"] for u in api.users()[:3]]
    path = f"/api/v2/groups/{group['id']}/members"
    assert api.post(path, {"memberIds": users, "version": group["version"] + 5}).status == 409
    assert api.post(path, {"memberIds": users}).status == 400
    assert api.post(path, {"memberIds": users, "version": group["version"]}).status == 202
    members = api.get(path).body
    assert {u["id"] for u in members["entities"]} == set(users)
    assert api.get(f"/api/v2/groups/{group['id']}").body["memberCount"] == 3
    assert api.delete(f"{path}?ids={users[0]},{users[1]}").status == 202
    assert [u["id"] for u in api.get(path).body["entities"]] == [users[2]]
    too_many = ",".join(f"u{i}" for i in range(51))
    assert api.delete(f"{path}?ids={too_many}").status == 400
    assert {"id": group["id"], "name": "G"} in sandbox.user(users[2])["groups"]


def test_group_search_7(api: Api) -> None:
    reply = api.post(
        "/api/v2/groups/search",
        {"query": [{"type": "EXACT", "fields": ["name"], "value": "supervisors"}]},
    )
    assert reply.status == 200
    assert [g["name"] for g in reply.body["results"]] == ["Supervisors"]
    assert reply.body["types"] == ["groups"]
    none = api.post(
        "/api/v2/groups/search", {"query": [{"type": "EXACT", "fields": ["name"], "value": "zzz"}]}
    )
    assert none.body["total"] == 0
    assert "results" not in none.body


def test_group_permissions_7(api: Api, sandbox: Sandbox) -> None:
    sandbox.add_client("ro", "s", [])
    token = api.login("ro", "s").body["access_token"]
    assert api.get("/api/v2/groups", token=token).status == 200
    denied = api.post(
        "/api/v2/groups", {"name": "N", "type": "official", "visibility": "public"}, token=token
    )
    assert denied.status == 403
