"""What cutting a person's access looks like in the sandbox: sessions (``DELETE
/api/v2/tokens/{userId}``, PYDOCS TokensApi), the undelete that comes back active (genesys-api.md
2.4), ``stateHistory``, group queue memberships (3) and a missing ``conversationSummary`` (2.1).
Each UNCONFIRMED reading here is the stricter one (docs/sandbox.md)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from scim_bridge.sandbox.seed import build_org
from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api


def _states(sandbox: Sandbox, user_id: str) -> list[str]:
    return [state for state, _ in sandbox.state_history(user_id)]


def _set_state(api: Api, user_id: str, state: str, *, deleted: bool = False) -> Any:
    query = "?state=deleted" if deleted else ""
    version = api.get(f"/api/v2/users/{user_id}{query}").body["version"]
    return api.patch(f"/api/v2/users/{user_id}", {"state": state, "version": version})


def _group_member(api: Api, sandbox: Sandbox) -> tuple[str, str]:
    """(user id, queue id) of a membership a group gives: a group routed to a queue."""
    groups = api.get("/api/v2/groups?pageSize=100").body["entities"]
    group = max(groups, key=lambda g: g["memberCount"])
    queue_id = api.get("/api/v2/routing/queues").body["entities"][0]["id"]
    members = sandbox.route_group(queue_id, group["id"])
    assert members, "no member of the group was new to the queue"
    return members[0], queue_id


# --- sessions ---------------------------------------------------------------------------------


def test_a_session_authenticates_as_its_user_on_users_me(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    token = sandbox.sign_in(user["id"])
    me = api.get("/api/v2/users/me", token=token)
    assert me.status == 200
    assert me.body["id"] == user["id"]
    assert sandbox.user(user["id"])["activeSessions"] == 1
    # A client-credentials token has no user behind it (UNCONFIRMED: 400).
    assert api.get("/api/v2/users/me").status == 400


def test_deactivation_alone_does_not_end_sessions_stricter_reading(
    api: Api, sandbox: Sandbox
) -> None:
    user = api.a_user()
    token = sandbox.sign_in(user["id"])
    assert _set_state(api, user["id"], "inactive").status == 200
    assert api.get("/api/v2/users/me", token=token).status == 200
    assert sandbox.user(user["id"])["activeSessions"] == 1
    assert api.delete(f"/api/v2/users/{user['id']}").status == 200
    assert api.get("/api/v2/users/me", token=token).status == 200  # not even a delete


def test_delete_tokens_ends_every_session_of_the_user_tokens_api(
    api: Api, sandbox: Sandbox
) -> None:
    user, other = api.users()[:2]
    tokens = [sandbox.sign_in(user["id"]), sandbox.sign_in(user["id"])]
    bystander = sandbox.sign_in(other["id"])
    reply = api.delete(f"/api/v2/tokens/{user['id']}")
    assert reply.status == 204
    assert reply.body is None
    for token in tokens:
        gone = api.get("/api/v2/users/me", token=token)
        assert gone.status == 401
        assert gone.code == "bad.credentials"
    assert sandbox.user(user["id"])["activeSessions"] == 0
    assert api.get("/api/v2/users/me", token=bystander).status == 200
    assert api.delete(f"/api/v2/tokens/{user['id']}").status == 204  # nothing left: still 204
    unknown = api.delete("/api/v2/tokens/00000000-0000-4000-8000-000000000000")
    assert unknown.status == 404


def test_delete_tokens_needs_oauth_token_delete_5_5(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    token = sandbox.sign_in(user["id"])
    sandbox.add_client("editor", "s", ["directory:user:edit"])
    editor = api.login("editor", "s").body["access_token"]
    refused = api.delete(f"/api/v2/tokens/{user['id']}", token=editor)
    assert refused.status == 403
    assert refused.body["messageParams"]["permissions"] == "oauth:token:delete"
    assert api.get("/api/v2/users/me", token=token).status == 200
    sandbox.add_client("revoker", "s", ["oauth:token:delete"])
    revoker = api.login("revoker", "s").body["access_token"]
    assert api.delete(f"/api/v2/tokens/{user['id']}", token=revoker).status == 204


def test_a_session_holds_no_permissions_and_expires(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    token = sandbox.sign_in(user["id"])
    assert api.delete(f"/api/v2/users/{user['id']}", token=token).status == 403
    sandbox.expire_tokens()
    assert api.get("/api/v2/users/me", token=token).code == "credentials.expired"
    assert sandbox.user(user["id"])["activeSessions"] == 0


def test_only_an_active_user_can_sign_in(api: Api, sandbox: Sandbox) -> None:
    inactive = api.a_user("inactive")
    with pytest.raises(Exception, match="409"):
        sandbox.sign_in(inactive["id"])


# --- undelete and stateHistory ----------------------------------------------------------------


def test_undelete_comes_back_active_whatever_state_is_asked_2_4(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    assert _set_state(api, user["id"], "inactive").status == 200
    assert api.delete(f"/api/v2/users/{user['id']}").status == 200
    restored = _set_state(api, user["id"], "inactive", deleted=True)
    assert restored.status == 200
    assert restored.body["state"] == "active"
    assert api.get(f"/api/v2/users/{user['id']}").body["state"] == "active"
    assert _set_state(api, user["id"], "inactive").body["state"] == "inactive"
    assert _states(sandbox, user["id"]) == ["active", "inactive", "deleted", "active", "inactive"]


def test_state_history_records_every_change_with_its_time(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    history = sandbox.user(user["id"])["stateHistory"]
    assert [h["state"] for h in history] == ["active"]  # seeded: one entry
    _set_state(api, user["id"], "inactive")
    _set_state(api, user["id"], "inactive")  # no change, no entry
    _set_state(api, user["id"], "active")
    history = sandbox.user(user["id"])["stateHistory"]
    assert [h["state"] for h in history] == ["active", "inactive", "active"]
    times = [h["at"] for h in history]
    assert times == sorted(times)
    assert all(t.endswith("Z") for t in times)
    created = api.post("/api/v2/users", {"name": "New Hire", "email": "new.hire@example.com"})
    assert _states(sandbox, created.body["id"]) == ["inactive"]


# --- group queue memberships ------------------------------------------------------------------


def test_the_seed_can_hold_group_memberships_3() -> None:
    """SandboxConfig(group_queue_members=True): the largest group routed to one queue."""
    org = build_org(20, 1, time.time(), group_queues=True)
    grouped = list(org.member_via)
    assert grouped
    assert all(org.member_by(q, u) == "group" for q, u in grouped)
    assert not build_org(20, 1, time.time()).member_via


def test_group_memberships_are_member_by_group_3(api: Api, sandbox: Sandbox) -> None:
    user_id, queue_id = _group_member(api, sandbox)
    members = api.get(f"/api/v2/routing/queues/{queue_id}/members?pageSize=100").body
    by = {m["id"]: m["memberBy"] for m in members["entities"]}
    assert by[user_id] == "group"
    grouped = api.get(f"/api/v2/routing/queues/{queue_id}/members?memberBy=group").body
    assert user_id in {m["id"] for m in grouped["entities"]}
    assert {m["memberBy"] for m in grouped["entities"]} == {"group"}
    mine = api.get(f"/api/v2/users/{user_id}/queues?joined=true").body["entities"]
    mine += api.get(f"/api/v2/users/{user_id}/queues?joined=false").body["entities"]
    assert queue_id in {q["id"] for q in mine}  # the user's own listing shows it too


def test_a_group_membership_cannot_be_removed_individually_stricter_reading_3(
    api: Api, sandbox: Sandbox
) -> None:
    user_id, queue_id = _group_member(api, sandbox)
    refused = api.delete(f"/api/v2/routing/queues/{queue_id}/members/{user_id}")
    assert refused.status == 400
    assert refused.code == "bad.request"
    bulk = api.post(f"/api/v2/routing/queues/{queue_id}/members?delete=true", [{"id": user_id}])
    assert bulk.status == 400
    assert queue_id in {q["id"] for q in sandbox.user(user_id)["queues"]}


def test_leaving_the_group_ends_the_membership_it_gave_3(api: Api, sandbox: Sandbox) -> None:
    user_id, queue_id = _group_member(api, sandbox)
    groups = sandbox.user(user_id)["groups"]
    for group in groups:
        assert api.delete(f"/api/v2/groups/{group['id']}/members?ids={user_id}").status == 202
    assert queue_id not in {q["id"] for q in sandbox.user(user_id)["queues"]}


# --- conversationSummary ----------------------------------------------------------------------


def test_conversation_summary_missing_fault_2_1(api: Api, sandbox: Sandbox) -> None:
    user, other = api.users()[:2]
    sandbox.faults(conversation_summary_missing=[user["id"]])
    path = "/api/v2/users/{}?expand=conversationSummary"
    assert "conversationSummary" not in api.get(path.format(user["id"])).body
    assert "conversationSummary" in api.get(path.format(other["id"])).body
    sandbox.faults(conversation_summary_missing=["*"])
    assert "conversationSummary" not in api.get(path.format(other["id"])).body
    with pytest.raises(Exception, match="400"):
        sandbox.faults(conversation_summary_missing="everyone")
