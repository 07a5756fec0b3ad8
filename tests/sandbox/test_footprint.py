"""The footprint: divisions, roles and grants, routing skills and languages, and what
deactivation, delete, restore and a GDPR delete do to them (genesys-api.md 2.4; PYDOCS
AuthorizationApi, UsersApi, RoutingApi; docs/sandbox.md "The footprint")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api


def _grants(api: Api, user_id: str, duplicates: bool = True) -> set[tuple[str, str, str]]:
    flag = "true" if duplicates else "false"
    reply = api.get(f"/api/v2/authorization/subjects/{user_id}?includeDuplicates={flag}")
    assert reply.status == 200, reply.body
    return {(g["subjectId"], g["role"]["id"], g["division"]["id"]) for g in reply.body["grants"]}


def _agent(api: Api, sandbox: Sandbox) -> dict[str, Any]:
    """An active user with direct grants, skills and a non-Home division."""
    home = sandbox.info()["home_division_id"]
    for user in api.users():
        record = sandbox.user(user["id"])["footprint"]
        direct = [g for g in record["grants"] if g["subjectId"] == user["id"]]
        if direct and record["routingSkills"] and record["divisionId"] != home:
            return user
    raise AssertionError("the seed has no such agent")


def _a_member_of_role_group(api: Api, sandbox: Sandbox) -> tuple[dict[str, Any], str]:
    groups = api.get("/api/v2/groups?pageSize=100").body["entities"]
    enabled = {g["id"] for g in groups if g["rolesEnabled"]}
    for user in api.users():
        for group in sandbox.user(user["id"])["groups"]:
            if group["id"] in enabled:
                return user, group["id"]
    raise AssertionError("the seed has no member of a role-enabled group")


def test_seeded_footprint_is_realistic(api: Api, sandbox: Sandbox) -> None:
    info = sandbox.info()
    assert {"Home", "Sales EMEA", "Support Americas"} <= set(info["divisions"])
    assert {"employee", "Supervisor", "Agent - Voice"} <= set(info["roles"])
    assert len(info["skills"]) >= 5
    assert "English" in info["languages"]
    active = [sandbox.user(u["id"])["footprint"] for u in api.users()]
    assert all(any(g["subjectId"] != "" for g in f["grants"]) for f in active)
    assert any(f["divisionId"] != info["home_division_id"] for f in active)
    # Inactive users lost their direct grants when they were deactivated (2.4).
    for user in api.users("inactive"):
        grants = sandbox.user(user["id"])["footprint"]["grants"]
        assert all(g["subjectId"] != user["id"] for g in grants)


def test_divisions_listing_and_home_no_permission(api: Api, sandbox: Sandbox) -> None:
    listing = api.get("/api/v2/authorization/divisions?pageSize=100").body
    names = {d["name"]: d for d in listing["entities"]}
    assert names["Home"]["homeDivision"] is True
    assert names["Sales EMEA"]["homeDivision"] is False
    home = api.get("/api/v2/authorization/divisions/home").body
    assert home["id"] == sandbox.info()["home_division_id"]
    one = api.get(f"/api/v2/authorization/divisions?id={home['id']}").body
    assert [d["id"] for d in one["entities"]] == [home["id"]]
    assert api.get("/api/v2/authorization/divisions/nope").status == 404


def test_roles_listing_needs_role_view(api: Api, sandbox: Sandbox) -> None:
    roles = api.get("/api/v2/authorization/roles?pageSize=100").body["entities"]
    assert {"employee", "Master Admin"} <= {r["name"] for r in roles}
    assert all(isinstance(r["userCount"], int) for r in roles)
    sandbox.add_client("viewer", "secret", ["directory:user:view"])
    token = api.login("viewer", "secret").body["access_token"]
    denied = api.get("/api/v2/authorization/roles", token=token)
    assert denied.status == 403
    assert "authorization:role:view" in denied.body["message"]


def test_subject_grants_name_their_subject_tf_user_roles(api: Api, sandbox: Sandbox) -> None:
    user, group_id = _a_member_of_role_group(api, sandbox)
    grants = _grants(api, user["id"])
    assert any(subject == group_id for subject, _, _ in grants)
    reply = api.get(f"/api/v2/authorization/subjects/{user['id']}").body
    assert {"id", "name", "grants", "version", "selfUri"} <= set(reply)
    grant = reply["grants"][0]
    assert {"subjectId", "division", "role", "grantMadeAt"} <= set(grant)
    assert {"id", "name", "homeDivision"} <= set(grant["division"])


def test_without_duplicates_a_group_grant_hides_the_direct_one(api: Api, sandbox: Sandbox) -> None:
    """UNCONFIRMED: which subject survives de-duplication; the group's (stricter)."""
    user, group_id = _a_member_of_role_group(api, sandbox)
    group_grants = {(r, d) for s, r, d in _grants(api, user["id"]) if s == group_id}
    role_id, division_id = next(iter(group_grants))
    body = {"grants": [{"roleId": role_id, "divisionId": division_id}]}
    assert api.post(f"/api/v2/authorization/subjects/{user['id']}/bulkadd", body).status == 204
    assert (user["id"], role_id, division_id) in _grants(api, user["id"])
    collapsed = _grants(api, user["id"], duplicates=False)
    assert (group_id, role_id, division_id) in collapsed
    assert (user["id"], role_id, division_id) not in collapsed


def test_bulkadd_grants_idempotent_and_all_or_nothing(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    info = sandbox.info()
    pairs = [
        {"roleId": info["roles"]["Queue Manager"], "divisionId": info["divisions"]["Sales EMEA"]},
        {"roleId": info["roles"]["Queue Manager"], "divisionId": info["divisions"]["Home"]},
    ]
    path = f"/api/v2/authorization/subjects/{user['id']}/bulkadd"
    assert api.post(path, {"grants": pairs}).status == 204
    assert api.post(path, {"grants": pairs}).status == 204
    mine = {(r, d) for s, r, d in _grants(api, user["id"]) if s == user["id"]}
    assert {(p["roleId"], p["divisionId"]) for p in pairs} <= mine
    before = _grants(api, user["id"])
    bad = [
        *pairs,
        {"roleId": "00000000-0000-4000-8000-000000000000", "divisionId": pairs[0]["divisionId"]},
    ]
    assert api.post(path, {"grants": bad}).status == 404
    assert _grants(api, user["id"]) == before
    assert api.post(path, {"grants": [{"roleId": "x"}]}).status == 400


def test_bulkadd_permission_checked_before_lookup(api: Api, sandbox: Sandbox) -> None:
    sandbox.add_client("viewer", "secret", ["authorization:grant:view"])
    token = api.login("viewer", "secret").body["access_token"]
    body = {"grants": [{"roleId": "r", "divisionId": "d"}]}
    missing = "/api/v2/authorization/subjects/00000000-0000-4000-8000-000000000000/bulkadd"
    denied = api.post(missing, body, token=token)
    assert denied.status == 403
    assert "authorization:grant:add" in denied.body["message"]
    assert api.post(missing, body).status == 404


def test_bulkadd_on_inactive_user_is_refused_stricter(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user("inactive")
    info = sandbox.info()
    body = {
        "grants": [{"roleId": info["roles"]["employee"], "divisionId": info["home_division_id"]}]
    }
    reply = api.post(f"/api/v2/authorization/subjects/{user['id']}/bulkadd", body)
    assert reply.status == 400


def test_user_skills_and_languages_read_and_bulk(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    info = sandbox.info()
    skills = api.get(f"/api/v2/users/{user['id']}/routingskills?pageSize=100").body
    seeded = sandbox.user(user["id"])["footprint"]["routingSkills"]
    assert {s["id"]: s["proficiency"] for s in skills["entities"]} == seeded
    body = [{"id": info["skills"]["Chargebacks"], "proficiency": 4.5}]
    reply = api.patch(f"/api/v2/users/{user['id']}/routingskills/bulk", body)
    assert reply.status == 200
    assert {"id": info["skills"]["Chargebacks"], "proficiency": 4.5}.items() <= next(
        s for s in reply.body["entities"] if s["name"] == "Chargebacks"
    ).items()
    langs = [{"id": info["languages"]["Japanese"], "proficiency": 3}]
    reply = api.patch(f"/api/v2/users/{user['id']}/routinglanguages/bulk", langs)
    assert reply.status == 200
    held = api.get(f"/api/v2/users/{user['id']}/routinglanguages").body["entities"]
    assert {"Japanese"} <= {lang["name"] for lang in held}
    too_many = [{"id": info["skills"]["Chargebacks"], "proficiency": 1}] * 51
    assert api.patch(f"/api/v2/users/{user['id']}/routingskills/bulk", too_many).status == 400
    wrong = [{"id": info["skills"]["Chargebacks"], "proficiency": 6}]
    assert api.patch(f"/api/v2/users/{user['id']}/routingskills/bulk", wrong).status == 400


@pytest.mark.parametrize(
    ("path", "permission"),
    [
        ("routingskills/bulk", "routing:skill:assign"),
        ("routinglanguages/bulk", "routing:language:assign"),
    ],
)
def test_skill_and_language_assign_permissions(
    api: Api, sandbox: Sandbox, path: str, permission: str
) -> None:
    sandbox.add_client("viewer", "secret", ["directory:user:view"])
    token = api.login("viewer", "secret").body["access_token"]
    user = api.a_user()
    body = [{"id": "00000000-0000-4000-8000-000000000000", "proficiency": 1}]
    denied = api.patch(f"/api/v2/users/{user['id']}/{path}", body, token=token)
    assert denied.status == 403
    assert permission in denied.body["message"]
    sandbox.add_client("assigner", "secret", [permission])
    token = api.login("assigner", "secret").body["access_token"]
    assert api.patch(f"/api/v2/users/{user['id']}/{path}", body, token=token).status == 404


def test_expand_skills_languages_groups_and_best_effort(api: Api, sandbox: Sandbox) -> None:
    user, group_id = _a_member_of_role_group(api, sandbox)
    path = f"/api/v2/users/{user['id']}?expand=skills,languages,groups"
    body = api.get(path).body
    record = sandbox.user(user["id"])["footprint"]
    assert {s["id"]: s["proficiency"] for s in body["skills"]} == record["routingSkills"]
    assert {s["id"]: s["proficiency"] for s in body["languages"]} == record["routingLanguages"]
    assert group_id in {g["id"] for g in body["groups"]}
    sandbox.faults(drop_expands=["skills"])
    dropped = api.get(path).body
    assert "skills" not in dropped
    assert "languages" in dropped


def test_deactivation_removes_direct_grants_keeps_group_ones_2_4(
    api: Api, sandbox: Sandbox
) -> None:
    user, group_id = _a_member_of_role_group(api, sandbox)
    before = _grants(api, user["id"])
    assert any(s == user["id"] for s, _, _ in before)
    version = api.get(f"/api/v2/users/{user['id']}").body["version"]
    reply = api.patch(f"/api/v2/users/{user['id']}", {"state": "inactive", "version": version})
    assert reply.status == 200
    after = _grants(api, user["id"])
    assert after == {g for g in before if g[0] != user["id"]}
    assert any(g[0] == group_id for g in after)
    assert sandbox.user(user["id"])["footprint"]["routingSkills"] == {}
    # Reactivation restores none of them (2.4).
    version = reply.body["version"]
    assert (
        api.patch(f"/api/v2/users/{user['id']}", {"state": "active", "version": version}).status
        == 200
    )
    assert _grants(api, user["id"]) == after


def test_routing_kept_on_deactivation_when_switched_off(api: Api, sandbox: Sandbox) -> None:
    sandbox.faults(strip_routing_on_deactivate=False)
    user = _agent(api, sandbox)
    skills = sandbox.user(user["id"])["footprint"]["routingSkills"]
    version = api.get(f"/api/v2/users/{user['id']}").body["version"]
    api.patch(f"/api/v2/users/{user['id']}", {"state": "inactive", "version": version})
    assert sandbox.user(user["id"])["footprint"]["routingSkills"] == skills


def test_delete_moves_to_home_and_restore_does_not_move_back_2_4(
    api: Api, sandbox: Sandbox
) -> None:
    user = _agent(api, sandbox)
    home = sandbox.info()["home_division_id"]
    assert api.delete(f"/api/v2/users/{user['id']}").status == 200
    deleted = api.get(f"/api/v2/users/{user['id']}?state=deleted").body
    assert deleted["division"]["id"] == home
    assert api.get(f"/api/v2/authorization/subjects/{user['id']}").status == 404
    assert api.get(f"/api/v2/users/{user['id']}/routingskills").status == 404
    restored = api.patch(
        f"/api/v2/users/{user['id']}", {"state": "active", "version": deleted["version"]}
    )
    assert restored.status == 200
    assert restored.body["division"]["id"] == home
    assert {s for s, _, _ in _grants(api, user["id"])} <= {
        g["id"] for g in sandbox.user(user["id"])["groups"]
    }
    assert api.get(f"/api/v2/users/{user['id']}/routingskills").body["entities"] == []


def test_move_user_to_division(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    target = sandbox.info()["divisions"]["Support Americas"]
    path = f"/api/v2/authorization/divisions/{target}/objects/USER"
    assert api.post(path, [user["id"]]).status == 204
    assert api.get(f"/api/v2/users/{user['id']}").body["division"]["id"] == target
    assert api.post(path, ["00000000-0000-4000-8000-000000000000"]).status == 404
    assert (
        api.post(f"/api/v2/authorization/divisions/{target}/objects/NOPE", [user["id"]]).status
        == 400
    )
    sandbox.add_client("viewer", "secret", ["directory:user:view"])
    token = api.login("viewer", "secret").body["access_token"]
    assert api.post(path, [user["id"]], token=token).status == 403


def test_gdpr_deleted_user_cannot_be_restored_2_4(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    record = sandbox.gdpr_delete(user["id"])
    assert record["state"] == "deleted"
    assert record["footprint"]["gdprDeleted"] is True
    deleted = api.get(f"/api/v2/users/{user['id']}?state=deleted").body
    reply = api.patch(
        f"/api/v2/users/{user['id']}", {"state": "active", "version": deleted["version"]}
    )
    assert reply.status == 400
    assert "GDPR" in reply.body["message"]
    # Its email stays taken (stricter reading): a create with it is a 409.
    again = api.post("/api/v2/users", {"name": "Again", "email": user["email"]})
    assert again.status == 409
