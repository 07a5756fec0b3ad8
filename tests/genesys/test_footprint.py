"""The footprint through the gateway, over HTTP against the sandbox (issue 12; genesys-api.md
2.4; PYDOCS AuthorizationApi and UsersApi; docs/sandbox.md "The footprint")."""

from __future__ import annotations

import time
from typing import Any

import pytest

from scim_bridge.genesys.errors import NotFound, PermissionDenied, RateLimited, Unrestorable
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import Proficiency, RoleGrant
from tests.genesys.helpers import active_users, served


def _agent(gateway: SdkGateway, sandbox: Any) -> str:
    """An active user with direct grants, skills and a division other than Home."""
    home = sandbox.info()["home_division_id"]
    for user in active_users(gateway, 15):
        record = sandbox.user(user.id)["footprint"]
        direct = [g for g in record["grants"] if g["subjectId"] == user.id]
        if direct and record["routingSkills"] and record["divisionId"] != home:
            return user.id
    raise AssertionError("the seed has no such agent")


def test_footprint_matches_the_org_in_two_calls(gateway: SdkGateway, sandbox: Any) -> None:
    user_id = _agent(gateway, sandbox)
    record = sandbox.user(user_id)["footprint"]
    before = sandbox.stats()["total"]
    footprint = gateway.user_footprint(user_id)
    assert sandbox.stats()["total"] - before == 2  # one user read with expands, one grants read
    assert footprint.user.id == user_id
    assert footprint.division_id == record["divisionId"]
    assert {(g.role_id, g.division_id) for g in footprint.grants} == {
        (g["roleId"], g["divisionId"]) for g in record["grants"] if g["subjectId"] == user_id
    }
    assert all(g.role_name and g.division_name for g in footprint.grants)
    assert {(g.subject_id, g.role_id) for g in footprint.group_grants} == {
        (g["subjectId"], g["roleId"]) for g in record["grants"] if g["subjectId"] != user_id
    }
    assert {s.id: s.proficiency for s in footprint.skills} == record["routingSkills"]
    assert {s.id: s.proficiency for s in footprint.languages} == record["routingLanguages"]
    assert footprint.group_ids is not None
    assert set(footprint.group_ids) == {g["id"] for g in sandbox.user(user_id)["groups"]}


def test_the_footprint_read_answers_the_active_conversation_check(
    gateway: SdkGateway, sandbox: Any
) -> None:
    """Issue 11: the snapshot's one user read carries ``conversationSummary`` too (2.1), alone and
    in bulk; a summary Genesys left out is unknown (None), never "idle"."""
    user_id = _agent(gateway, sandbox)
    idle = gateway.user_footprint(user_id).conversations
    assert idle is not None
    assert (idle.busy, idle.user is not None) == (False, True)
    sandbox.set_conversation(user_id, True)
    busy = gateway.user_footprint(user_id).conversations
    assert busy is not None
    assert busy.busy
    assert busy == gateway.footprints([user_id])[user_id].conversations
    sandbox.faults(drop_expands=["conversationSummary"])
    assert gateway.user_footprint(user_id).conversations is None
    assert gateway.footprints([user_id])[user_id].conversations is None


def test_footprint_reads_a_dropped_expand_on_its_own(gateway: SdkGateway, sandbox: Any) -> None:
    """Expands are best effort (PYDOCS get_user): absent is unknown, not empty."""
    user_id = _agent(gateway, sandbox)
    record = sandbox.user(user_id)["footprint"]
    sandbox.faults(drop_expands=["skills", "languages", "groups"])
    footprint = gateway.user_footprint(user_id)
    assert {s.id: s.proficiency for s in footprint.skills} == record["routingSkills"]
    assert {s.id: s.proficiency for s in footprint.languages} == record["routingLanguages"]
    assert footprint.group_ids is None
    stats = sandbox.stats()
    assert served(stats, "GET /api/v2/users/<user_id>/routingskills", 200) == 1
    assert served(stats, "GET /api/v2/users/<user_id>/routinglanguages", 200) == 1


def test_deactivate_then_restore_each_part_2_4(gateway: SdkGateway, sandbox: Any) -> None:
    user_id = _agent(gateway, sandbox)
    before = gateway.user_footprint(user_id)
    gateway.set_state(user_id, "inactive")
    stripped = gateway.user_footprint(user_id)
    assert stripped.grants == ()
    assert stripped.group_grants == before.group_grants
    gateway.set_state(user_id, "active")
    assert gateway.user_footprint(user_id).grants == ()  # reactivation restores none (2.4)
    gateway.grant_roles(user_id, before.grants)
    gateway.grant_roles(user_id, before.grants)  # idempotent
    gateway.assign_skills(user_id, before.skills)
    gateway.assign_languages(user_id, before.languages)
    after = gateway.user_footprint(user_id)
    assert {(g.role_id, g.division_id) for g in after.grants} == {
        (g.role_id, g.division_id) for g in before.grants
    }
    assert after.skills == before.skills
    assert after.languages == before.languages


def test_delete_moves_to_home_restore_and_move_back_2_4(gateway: SdkGateway, sandbox: Any) -> None:
    user_id = _agent(gateway, sandbox)
    before = gateway.user_footprint(user_id)
    home = gateway.home_division()
    assert home.home
    assert home.id == sandbox.info()["home_division_id"]
    gateway.delete_user(user_id)
    with pytest.raises(NotFound):
        gateway.user_footprint(user_id)
    restored = gateway.restore_user(user_id)
    assert restored.state == "active"
    assert restored.division_id == home.id  # a restore does not move the user back
    assert gateway.restore_user(user_id) == restored  # not deleted: returned as it is
    gateway.move_to_division(user_id, str(before.division_id))
    gateway.move_to_division(user_id, str(before.division_id))  # idempotent
    assert gateway.user_footprint(user_id).division_id == before.division_id


def test_gdpr_deleted_user_is_unrestorable_2_4(gateway: SdkGateway, sandbox: Any) -> None:
    user_id = active_users(gateway)[0].id
    sandbox.gdpr_delete(user_id)
    with pytest.raises(Unrestorable) as caught:
        gateway.restore_user(user_id)
    assert "GDPR" in caught.value.message
    assert sandbox.user(user_id)["state"] == "deleted"


def test_grant_roles_in_chunks_each_pair_once(gateway: SdkGateway, sandbox: Any) -> None:
    user_id = active_users(gateway)[0].id
    info = sandbox.info()
    pairs = [
        RoleGrant(role, division)
        for role in info["roles"].values()
        for division in info["divisions"].values()
    ]
    many = [*pairs, *pairs[:3]] * 2  # 64 with repeats: two chunks of distinct pairs
    gateway.grant_roles(user_id, many)
    assert served(sandbox.stats(), "POST /api/v2/authorization/subjects/<subject_id>/bulkadd") == 1
    assert {(g.role_id, g.division_id) for g in gateway.user_footprint(user_id).grants} >= {
        (p.role_id, p.division_id) for p in pairs
    }


def test_assign_skills_chunks_by_fifty(gateway: SdkGateway, sandbox: Any) -> None:
    user_id = active_users(gateway)[0].id
    skill = next(iter(sandbox.info()["skills"].values()))
    gateway.assign_skills(user_id, [Proficiency(skill, 1.5)] * 60)
    assert served(sandbox.stats(), "PATCH /api/v2/users/<user_id>/routingskills/bulk", 200) == 2
    assert sandbox.user(user_id)["footprint"]["routingSkills"][skill] == 1.5


@pytest.mark.parametrize(
    ("permission", "call"),
    [
        ("authorization:grant:view", lambda g, u: g.user_footprint(u)),
        ("authorization:grant:add", lambda g, u: g.grant_roles(u, [RoleGrant("r", "d")])),
        ("routing:skill:assign", lambda g, u: g.assign_skills(u, [Proficiency("s", 1.0)])),
        ("routing:language:assign", lambda g, u: g.assign_languages(u, [Proficiency("l", 1.0)])),
    ],
)
def test_each_part_names_its_permission(
    gateway: SdkGateway, make_gateway: Any, sandbox: Any, permission: str, call: Any
) -> None:
    user_id = active_users(gateway)[0].id
    sandbox.add_client("narrow", "secret", ["directory:user:view"])
    narrow = make_gateway(client_id="narrow", client_secret="secret")
    # Unknown roles, skills, languages: permissions are checked before anything is looked up.
    with pytest.raises(PermissionDenied) as caught:
        call(narrow, user_id)
    assert permission in caught.value.message


def test_footprint_read_waits_out_a_429(gateway: SdkGateway, sandbox: Any) -> None:
    user_id = _agent(gateway, sandbox)
    sandbox.fail_next("/api/v2/authorization/subjects", status=429, retry_after=0)
    assert gateway.user_footprint(user_id).grants


def test_footprint_read_gives_up_at_the_deadline(gateway: SdkGateway, sandbox: Any) -> None:
    user_id = _agent(gateway, sandbox)
    sandbox.fail_next("/api/v2/authorization/subjects", status=429, count=5, retry_after=30)
    with pytest.raises(RateLimited):
        gateway.user_footprint(user_id, deadline=time.monotonic() + 2)


def test_footprints_in_bulk_one_listing_and_each_users_grants(
    gateway: SdkGateway, sandbox: Any
) -> None:
    users = [u.id for u in active_users(gateway, 6)]
    deleted = next(u.id for u in gateway.list_users(state="deleted", page_size=5).items)
    before = sandbox.stats()
    found = gateway.footprints([*users, deleted])
    stats = sandbox.stats()
    assert list(found) == users  # deleted users are absent
    assert served(stats, "GET /api/v2/users") - served(before, "GET /api/v2/users") == 1
    subjects = "GET /api/v2/authorization/subjects/<subject_id>"
    assert served(stats, subjects) - served(before, subjects) == len(users)
    for uid in users:
        assert found[uid] == gateway.user_footprint(uid)
