"""Users: genesys-api.md 2.1-2.5."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api


def _patch(api: Api, user: dict[str, Any], **fields: Any) -> Any:
    return api.patch(f"/api/v2/users/{user['id']}", {"version": user["version"], **fields})


def test_seed_is_deterministic(sandbox: Sandbox, api: Api) -> None:
    first = [(u["id"], u["email"], u["version"]) for u in api.users("any")]
    sandbox.reset(users=20, seed=1)
    api.relogin()
    assert [(u["id"], u["email"], u["version"]) for u in api.users("any")] == first
    sandbox.reset(users=20, seed=2)
    api.relogin()
    assert [u["id"] for u in api.users("any")] != [f[0] for f in first]


def test_user_json_matches_sdk_user_model_2_1(api: Api) -> None:
    user = api.a_user()
    for key in ("id", "name", "division", "email", "state", "username", "version", "selfUri"):
        assert key in user
    assert user["state"] in ("active", "inactive", "deleted")
    assert set(user["division"]) == {"id", "name", "selfUri"}
    assert user["primaryContactInfo"][0]["mediaType"] == "EMAIL"


def test_get_user_reads_active_and_inactive_2_1(api: Api) -> None:
    for state in ("active", "inactive"):
        user = api.a_user(state)
        reply = api.get(f"/api/v2/users/{user['id']}")
        assert reply.status == 200
        assert reply.body["state"] == state


def test_unknown_user_is_404_not_found_2_1(api: Api) -> None:
    reply = api.get("/api/v2/users/00000000-0000-4000-8000-000000000000")
    assert reply.status == 404
    assert reply.code == "not.found"


def test_list_state_filter_2_2(api: Api) -> None:
    everyone = api.users("any")
    for state in ("active", "inactive", "deleted"):
        assert [u["id"] for u in api.users(state)] == [
            u["id"] for u in everyone if u["state"] == state
        ]
    assert {u["state"] for u in api.users()} == {"active"}
    assert len(everyone) == 20


def test_list_is_name_ordered_and_pages_2_2(api: Api) -> None:
    everyone = api.users("any")
    assert [(u["name"].casefold(), u["id"]) for u in everyone] == sorted(
        (u["name"].casefold(), u["id"]) for u in everyone
    )
    page = api.get("/api/v2/users?state=any&pageSize=7&pageNumber=2").body
    assert [u["id"] for u in page["entities"]] == [u["id"] for u in everyone[7:14]]
    assert page["total"] == 20
    assert page["pageCount"] == 3
    assert page["pageSize"] == 7
    assert page["pageNumber"] == 2
    assert "nextUri" in page
    assert "previousUri" in page
    last = api.get("/api/v2/users?state=any&pageSize=7&pageNumber=3").body
    assert "nextUri" not in last
    beyond = api.get("/api/v2/users?state=any&pageSize=7&pageNumber=9").body
    assert beyond["entities"] == []
    descending = api.get("/api/v2/users?state=any&pageSize=500&sortOrder=descending").body
    assert [u["id"] for u in descending["entities"]] == [u["id"] for u in everyone][::-1]


def test_list_page_size_cap_2_2(api: Api) -> None:
    assert api.get("/api/v2/users?pageSize=500").status == 200
    reply = api.get("/api/v2/users?pageSize=501")
    assert reply.status == 400
    assert api.get("/api/v2/users?pageSize=0").status == 400
    assert api.get("/api/v2/users?state=gone").status == 400


def test_list_by_ids_both_spellings_1_5(api: Api) -> None:
    users = api.users()[:3]
    ids = [u["id"] for u in users]
    joined = api.get(f"/api/v2/users?id={','.join(ids)}").body["entities"]
    repeated = api.get("/api/v2/users?" + "&".join(f"id={i}" for i in ids)).body["entities"]
    assert {u["id"] for u in joined} == set(ids)
    assert {u["id"] for u in repeated} == set(ids)


def test_create_returns_200_and_user_2_5(api: Api, sandbox: Sandbox) -> None:
    reply = api.post(
        "/api/v2/users",
        {
            "name": "New Person",
            "email": "New.Person@example.com",
            "state": "active",
            "title": "Agent",
        },
    )
    assert reply.status == 200
    assert reply.body["state"] == "active"
    assert reply.body["version"] == 1
    assert sandbox.user(reply.body["id"])["email"] == "New.Person@example.com"


def test_create_without_state_is_inactive_2_5(api: Api) -> None:
    reply = api.post("/api/v2/users", {"name": "Quiet", "email": "quiet@example.com"})
    assert reply.status == 200
    assert reply.body["state"] == "inactive"


def test_create_needs_name_and_email_2_5(api: Api) -> None:
    assert api.post("/api/v2/users", {"name": "No Mail"}).status == 400
    assert api.post("/api/v2/users", {"email": "x@example.com"}).status == 400
    assert api.post("/api/v2/users", {"name": "A", "email": "a@x.com", "bogus": 1}).status == 400


def test_duplicate_email_is_409_general_conflict_even_if_deleted_2_5(api: Api) -> None:
    active = api.a_user()
    reply = api.post("/api/v2/users", {"name": "Dup", "email": active["email"].upper()})
    assert reply.status == 409
    assert reply.code == "general.conflict"
    assert api.delete(f"/api/v2/users/{active['id']}").status == 200
    again = api.post("/api/v2/users", {"name": "Dup", "email": active["email"]})
    assert again.status == 409
    assert again.code == "general.conflict"


def test_patch_updates_fields_and_bumps_version_2_3(api: Api) -> None:
    user = api.a_user()
    reply = _patch(api, user, title="Chief", department="R&D", employerInfo={"employeeId": "X1"})
    assert reply.status == 200
    assert reply.body["version"] == user["version"] + 1
    assert reply.body["title"] == "Chief"
    assert reply.body["employerInfo"] == {"employeeId": "X1"}
    assert api.get(f"/api/v2/users/{user['id']}").body["version"] == user["version"] + 1


def test_patch_requires_version_2_3(api: Api) -> None:
    user = api.a_user()
    reply = api.patch(f"/api/v2/users/{user['id']}", {"title": "No version"})
    assert reply.status == 400


def test_patch_stale_version_is_409_2_3(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    sandbox.bump_version(user["id"])
    reply = _patch(api, user, title="Late")
    assert reply.status == 409
    assert reply.code == "version.mismatch"
    assert "does not match the current version" in reply.body["message"]
    assert sandbox.user(user["id"])["title"] != "Late"


def test_state_change_must_travel_alone_2_3(api: Api) -> None:
    user = api.a_user()
    reply = _patch(api, user, state="inactive", title="Also")
    assert reply.status == 400
    assert api.get(f"/api/v2/users/{user['id']}").body["state"] == "active"


def test_deactivate_and_reactivate_2_3(api: Api) -> None:
    user = api.a_user()
    off = _patch(api, user, state="inactive")
    assert off.status == 200
    assert off.body["state"] == "inactive"
    assert off.body["version"] == user["version"] + 1
    assert user["id"] not in {u["id"] for u in api.users()}
    on = _patch(api, off.body, state="active")
    assert on.body["state"] == "active"
    assert on.body["version"] == user["version"] + 2


def test_patch_state_deleted_is_refused_2_3(api: Api) -> None:
    assert _patch(api, api.a_user(), state="deleted").status == 400


def test_delete_is_soft_2_4(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    reply = api.delete(f"/api/v2/users/{user['id']}")
    assert reply.status == 200
    assert reply.body == {}
    gone = api.get(f"/api/v2/users/{user['id']}")
    assert gone.status == 404
    assert gone.code == "not.found"
    deleted = api.get(f"/api/v2/users/{user['id']}?state=deleted")
    assert deleted.status == 200
    assert deleted.body["state"] == "deleted"
    assert deleted.body["version"] == user["version"] + 1
    assert user["id"] in {u["id"] for u in api.users("deleted")}
    assert sandbox.user(user["id"])["state"] == "deleted"
    assert api.delete(f"/api/v2/users/{user['id']}").status == 404


def test_state_deleted_read_only_finds_deleted_users_2_1(api: Api) -> None:
    user = api.a_user()
    assert api.get(f"/api/v2/users/{user['id']}?state=deleted").status == 404


def test_restore_deleted_user_with_patch_2_4(api: Api) -> None:
    user = api.a_user()
    api.delete(f"/api/v2/users/{user['id']}")
    deleted = api.get(f"/api/v2/users/{user['id']}?state=deleted").body
    assert _patch(api, deleted, title="x").status == 404
    reply = _patch(api, deleted, state="active")
    assert reply.status == 200
    assert reply.body["state"] == "active"
    assert api.get(f"/api/v2/users/{user['id']}").status == 200


def test_conversation_summary_expand_2_1(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    summary = api.get(f"/api/v2/users/{user['id']}?expand=conversationSummary").body[
        "conversationSummary"
    ]
    assert summary["userId"] == user["id"]
    for media in ("call", "callback", "email", "message", "chat", "socialExpression", "video"):
        assert summary[media] == {
            "contactCenter": {"active": 0, "acw": 0},
            "enterprise": {"active": 0, "acw": 0},
        }
    sandbox.set_conversation(user["id"], active=True)
    busy = api.get(f"/api/v2/users/{user['id']}?expand=conversationSummary,routingStatus").body
    assert busy["conversationSummary"]["call"]["contactCenter"]["active"] == 1
    assert busy["routingStatus"]["status"] == "INTERACTING"
    sandbox.set_conversation(user["id"], active=False)
    idle = api.get(f"/api/v2/users/{user['id']}?expand=conversationSummary").body
    assert idle["conversationSummary"]["call"]["contactCenter"]["active"] == 0


def test_unknown_expand_is_400_2_1(api: Api) -> None:
    user = api.a_user()
    assert api.get(f"/api/v2/users/{user['id']}?expand=everything").status == 400


def test_active_conversation_blocks_deactivation_and_delete_2_1(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    sandbox.set_conversation(user["id"], active=True, media_type="chat")
    blocked = _patch(api, user, state="inactive")
    assert blocked.status == 409
    assert blocked.code == "user.active.conversation"
    assert api.delete(f"/api/v2/users/{user['id']}").status == 409
    sandbox.faults(block_deactivation_on_active_conversation=False)
    assert _patch(api, user, state="inactive").status == 200


def test_version_bump_control_simulates_concurrent_editor(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    record = sandbox.bump_version(user["id"])
    assert record["version"] == user["version"] + 1


@pytest.mark.parametrize("path", ["/api/v2/users", "/api/v2/users/search"])
def test_wrong_content_type_is_415_5_4(api: Api, path: str) -> None:
    response = api.http.request(
        "POST",
        api.sandbox.url + path,
        body=b"name=x",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "text/plain"},
    )
    assert response.status == 415
