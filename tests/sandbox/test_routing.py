"""Queue memberships: genesys-api.md section 3 (permissions 5.5)."""

from __future__ import annotations

from typing import Any

from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api


def _member(api: Api, sandbox: Sandbox) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An active user with memberships, all of their own (memberBy=user: a group membership
    cannot be removed one by one), and those memberships."""
    for user in api.users():
        queues = sandbox.user(user["id"])["queues"]
        if queues and all(q["memberBy"] == "user" for q in queues):
            return user, queues
    raise AssertionError("the seed has no member")


def test_user_queues_joined_default_true_3(api: Api, sandbox: Sandbox) -> None:
    for user in api.users():
        queues = sandbox.user(user["id"])["queues"]
        joined = api.get(f"/api/v2/users/{user['id']}/queues").body
        unjoined = api.get(f"/api/v2/users/{user['id']}/queues?joined=false").body
        assert {q["id"] for q in joined["entities"]} == {q["id"] for q in queues if q["joined"]}
        assert {q["id"] for q in unjoined["entities"]} == {
            q["id"] for q in queues if not q["joined"]
        }
        assert all(q["joined"] is True for q in joined["entities"])
        assert all(q["joined"] is False for q in unjoined["entities"])


def test_seed_has_joined_and_unjoined_memberships_3(api: Api, sandbox: Sandbox) -> None:
    flags = [q["joined"] for u in api.users() for q in sandbox.user(u["id"])["queues"]]
    assert True in flags
    assert False in flags


def test_remove_member_204_then_404_3(api: Api, sandbox: Sandbox) -> None:
    user, queues = _member(api, sandbox)
    queue_id = queues[0]["id"]
    path = f"/api/v2/routing/queues/{queue_id}/members/{user['id']}"
    first = api.delete(path)
    assert first.status == 204
    assert first.body is None
    assert queue_id not in {q["id"] for q in sandbox.user(user["id"])["queues"]}
    again = api.delete(path)
    assert again.status == 404
    assert again.code == "not.found"


def test_bulk_add_and_delete_members_3(api: Api, sandbox: Sandbox) -> None:
    user, queues = _member(api, sandbox)
    queue_id = queues[0]["id"]
    path = f"/api/v2/routing/queues/{queue_id}/members"
    assert api.post(path + "?delete=true", [{"id": user["id"]}]).status == 204
    assert sandbox.user(user["id"])["queues"] == queues[1:]
    assert api.post(path, [{"id": user["id"]}]).status == 204
    restored = {q["id"]: q["joined"] for q in sandbox.user(user["id"])["queues"]}
    assert restored[queue_id] is False  # added members start unjoined (stricter reading)
    assert api.post(path, [{"id": "x"}] * 101).status == 400


def test_bulk_delete_members_limits_3(api: Api, sandbox: Sandbox) -> None:
    """``?delete=true`` takes up to 100 members (3): 101 is a 400 and removes nobody; a user who
    is not a member is no error (UNCONFIRMED: the lenient reading, a replay removes nothing);
    an unknown queue is a 404; the permission is the single DELETE's."""
    user, queues = _member(api, sandbox)
    queue_id = queues[0]["id"]
    path = f"/api/v2/routing/queues/{queue_id}/members?delete=true"
    sandbox.add_client("viewer", "s", ["routing:queue:view"])
    token = api.login("viewer", "s").body["access_token"]
    denied = api.post(path, [{"id": user["id"]}], token=token)
    assert (denied.status, denied.code) == (403, "missing.any.permissions")
    too_many = [{"id": user["id"]}] + [{"id": f"x{i}"} for i in range(100)]
    assert api.post(path, too_many).status == 400
    assert _in(sandbox, user["id"], queue_id)
    stranger = next(u for u in api.users() if not _in(sandbox, u["id"], queue_id))
    assert api.post(path, [{"id": user["id"]}, {"id": stranger["id"]}]).status == 204
    assert not _in(sandbox, user["id"], queue_id)
    assert api.post(path, [{"id": user["id"]}]).status == 204  # again: nothing to remove
    unknown = "/api/v2/routing/queues/00000000-0000-4000-8000-000000000000/members?delete=true"
    assert api.post(unknown, [{"id": user["id"]}]).status == 404


def _in(sandbox: Sandbox, user_id: str, queue_id: str) -> bool:
    return queue_id in {q["id"] for q in sandbox.user(user_id)["queues"]}


def test_patch_user_queues_joins_and_unjoins_3(api: Api, sandbox: Sandbox) -> None:
    user, queues = _member(api, sandbox)
    flipped = [{"id": q["id"], "joined": not q["joined"]} for q in queues]
    stranger = next(
        q["id"] for q in api.get("/api/v2/routing/queues").body["entities"]
        if q["id"] not in {m["id"] for m in queues}
    )  # fmt: skip
    reply = api.patch(
        f"/api/v2/users/{user['id']}/queues", [*flipped, {"id": stranger, "joined": True}]
    )
    assert reply.status == 200
    assert len(reply.body["entities"]) == len(queues)  # the non-member pair is disregarded
    now = {q["id"]: q["joined"] for q in sandbox.user(user["id"])["queues"]}
    assert now == {f["id"]: f["joined"] for f in flipped}


def test_list_queues_and_members_3(api: Api, sandbox: Sandbox) -> None:
    queues = api.get("/api/v2/routing/queues?pageSize=100").body
    assert queues["total"] == 6
    queue = queues["entities"][0]
    members = api.get(f"/api/v2/routing/queues/{queue['id']}/members?pageSize=100").body
    assert members["total"] == queue["memberCount"]
    assert api.get(f"/api/v2/routing/queues/{queue['id']}/members?pageSize=101").status == 400


def test_memberships_survive_deactivation_and_delete_2_4(api: Api, sandbox: Sandbox) -> None:
    user, queues = _member(api, sandbox)
    api.delete(f"/api/v2/users/{user['id']}")
    assert sandbox.user(user["id"])["queues"] == queues
    assert api.get(f"/api/v2/users/{user['id']}/queues").status == 404
    queue_id = queues[0]["id"]
    assert api.delete(f"/api/v2/routing/queues/{queue_id}/members/{user['id']}").status == 204


def test_routing_permissions_5_5(api: Api, sandbox: Sandbox) -> None:
    user, queues = _member(api, sandbox)
    sandbox.add_client("viewer", "s", ["routing:queue:view"])
    token = api.login("viewer", "s").body["access_token"]
    assert api.get(f"/api/v2/users/{user['id']}/queues", token=token).status == 200
    reply = api.delete(
        f"/api/v2/routing/queues/{queues[0]['id']}/members/{user['id']}", token=token
    )
    assert reply.status == 403
    assert "routing:queueMember:manage" in reply.body["message"]
    sandbox.add_client("blind", "s", [])
    blind = api.login("blind", "s").body["access_token"]
    assert api.get(f"/api/v2/users/{user['id']}/queues", token=blind).status == 403
