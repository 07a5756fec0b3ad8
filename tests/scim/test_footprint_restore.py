"""The whole footprint over SCIM (issue 12): deactivation takes roles (and, in the sandbox's
stricter reading, skills and languages) away and a delete moves the user to Home
(genesys-api.md 2.4); the bridge's reactivation and re-hire put them back and check the result
against the snapshot taken before the first change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_bridge.deprovision import jobs
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import Proficiency, RoleGrant
from tests.fixtures.bridge import Bridge, close_bridge, make_bridge
from tests.genesys.helpers import served
from tests.scim.replay import load, unique_email


def _gateway(bridge: Bridge) -> SdkGateway:
    gateway: SdkGateway = bridge.app.extensions["scim_bridge"].gateway
    return gateway


def _finish_jobs(bridge: Bridge) -> None:
    bridge.app.extensions["scim_bridge"].deprovisioner.worker.run_until_idle(timeout_s=60)


def _agent(bridge: Bridge, sandbox: Any, login: str) -> tuple[str, dict[str, Any]]:
    """A user created over SCIM, then given what an admin gives an agent in Genesys: roles in
    two divisions, a division of its own, skills, languages and two queues (one unjoined)."""
    r = bridge.post("/Users", json=load("okta-create-user.json", username=login))
    assert r.status_code == 201, r.get_data(as_text=True)
    uid = str(r.get_json()["id"])
    info = sandbox.control.info()
    gateway = _gateway(bridge)
    sales, support = info["divisions"]["Sales EMEA"], info["divisions"]["Support Americas"]
    gateway.grant_roles(
        uid,
        [
            RoleGrant(info["roles"]["Agent - Voice"], sales),
            RoleGrant(info["roles"]["Supervisor"], sales),
            RoleGrant(info["roles"]["Supervisor"], support),
            RoleGrant(info["roles"]["employee"], info["home_division_id"]),
        ],
    )
    gateway.move_to_division(uid, sales)
    gateway.assign_skills(
        uid,
        [
            Proficiency(info["skills"]["Chargebacks"], 4.5),
            Proficiency(info["skills"]["VIP Handling"], 2.0),
        ],
    )
    gateway.assign_languages(
        uid,
        [
            Proficiency(info["languages"]["English"], 5.0),
            Proficiency(info["languages"]["Spanish"], 3.0),
        ],
    )
    queues = [q.queue_id for q in _queues(gateway)][:2]
    gateway.add_queue_member(queues[0], uid)
    gateway.add_queue_member(queues[1], uid)
    gateway.set_queues_joined(uid, {queues[0]: True, queues[1]: False})
    before = sandbox.control.user(uid)
    assert len({g["divisionId"] for g in before["footprint"]["grants"]}) == 3
    return uid, before


def _queues(gateway: SdkGateway) -> list[Any]:
    any_member = gateway.list_users(state="active", page_size=50).items
    seen: dict[str, Any] = {}
    for user in any_member:
        for q in gateway.user_queues(user.id):
            seen.setdefault(q.queue_id, q)
        if len(seen) >= 2:
            break
    return sorted(seen.values(), key=lambda q: q.queue_id)


def _kept(record: dict[str, Any]) -> dict[str, Any]:
    """What the footprint test compares: division, grants, skills, languages, queues."""
    return {
        "footprint": record["footprint"],
        "queues": sorted((q["id"], q["joined"]) for q in record["queues"]),
    }


def _patch_active(bridge: Bridge, uid: str, active: bool) -> None:
    body = load("okta-patch-activate.json" if active else "okta-patch-deactivate.json")
    r = bridge.patch(f"/Users/{uid}", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["active"] is active


def test_deactivate_then_reactivate_finds_everything_back_2_4(bridge: Bridge, sandbox: Any) -> None:
    uid, before = _agent(bridge, sandbox, unique_email("footprint"))
    _patch_active(bridge, uid, False)
    _finish_jobs(bridge)
    stripped = sandbox.control.user(uid)
    assert stripped["state"] == "inactive"
    assert [g for g in stripped["footprint"]["grants"] if g["subjectId"] == uid] == []
    assert stripped["footprint"]["routingSkills"] == {}
    assert stripped["queues"] == []

    _patch_active(bridge, uid, True)
    _finish_jobs(bridge)

    after = sandbox.control.user(uid)
    assert after["state"] == "active"
    assert _kept(after) == _kept(before)
    job = next(j for j in jobs.listing(bridge.engine) if j.action == "reactivate")
    assert (job.state, job.restoration.difference) == ("done", {})
    assert job.restoration.target is not None
    assert len(job.restoration.target.grants) == 4
    tags = bridge.tags()
    # Deactivation leaves the division alone (a delete moves the user to Home): nothing to move.
    assert "deprovision:division:restored" not in tags
    for tag in (
        "deprovision:roles:restored",
        "deprovision:skills:restored",
        "deprovision:languages:restored",
        "deprovision:queue:restored",
        "deprovision:footprint:verified",
    ):
        assert tag in tags, tag


def test_a_membership_re_added_unjoined_meanwhile_gets_its_flag_back(
    bridge: Bridge, sandbox: Any
) -> None:
    """While the person was away an admin put them back in their joined queue, and Genesys
    started the membership unjoined (the sandbox's reading). Reactivation re-adds the other
    queue and sets both flags in one request; the check finds everything back, nothing held."""
    uid, before = _agent(bridge, sandbox, unique_email("rejoin"))
    joined = next(q["id"] for q in before["queues"] if q["joined"])
    _patch_active(bridge, uid, False)
    _finish_jobs(bridge)
    _gateway(bridge).add_queue_member(joined, uid)
    assert [(q["id"], q["joined"]) for q in sandbox.control.user(uid)["queues"]] == [
        (joined, False)
    ]
    start = sandbox.control.stats()

    _patch_active(bridge, uid, True)
    _finish_jobs(bridge)

    assert _kept(sandbox.control.user(uid)) == _kept(before)
    job = next(j for j in jobs.listing(bridge.engine) if j.action == "reactivate")
    assert (job.state, job.restoration.difference) == ("done", {})
    flags = "PATCH /api/v2/users/<user_id>/queues"
    assert served(sandbox.control.stats(), flags) - served(start, flags) == 1
    event = next(e for e in bridge.audit_events() if e["tag"] == "deprovision:queue:restored")
    detail = json.loads(event["detail"])
    assert detail["queues_rejoined"] == [joined]
    assert detail["queues_restored"] == sorted(
        q["id"] for q in before["queues"] if q["id"] != joined
    )


def test_a_second_deactivation_does_not_overwrite_the_first_snapshot(
    bridge: Bridge, sandbox: Any
) -> None:
    """Entra re-sends active=false: the restore uses what the user held before the first one."""
    uid, before = _agent(bridge, sandbox, unique_email("twice"))
    _patch_active(bridge, uid, False)
    _finish_jobs(bridge)
    _patch_active(bridge, uid, False)
    _finish_jobs(bridge)
    _patch_active(bridge, uid, True)
    _finish_jobs(bridge)
    assert _kept(sandbox.control.user(uid)) == _kept(before)


EVERYTHING = [
    "directory:user:view", "directory:user:add", "directory:user:edit",
    "directory:user:delete", "routing:queue:view", "routing:queueMember:manage",
    "routing:queue:join", "analytics:conversationDetail:view", "authorization:grant:view",
    "authorization:grant:add", "routing:skill:assign", "routing:language:assign",
    "directory:group:edit",
    "oauth:token:delete",  # every deactivation ends the user's sessions (issue 10)
]  # fmt: skip


def _bridge_without(
    sandbox: Any, tmp_path: Path, name: str, missing: set[str], extra: tuple[str, ...] = ()
) -> Bridge:
    """A bridge whose OAuth client holds every permission but ``missing`` (plus ``extra``)."""
    sandbox.control.add_client(
        name, f"{name}-secret", [p for p in EVERYTHING if p not in missing] + list(extra)
    )
    (tmp_path / name).mkdir()
    return make_bridge(
        sandbox,
        tmp_path / name,
        genesys_client_id=name,
        genesys_client_secret=f"{name}-secret",
    )


@pytest.fixture
def no_grant_add(sandbox: Any, tmp_path: Path) -> Iterator[Bridge]:
    """A bridge whose OAuth client may do everything but grant roles."""
    made = _bridge_without(sandbox, tmp_path, "no-grant", {"authorization:grant:add"})
    yield made
    close_bridge(made)


def test_queues_left_unjoined_by_a_refused_join_come_back_on_the_retry(
    bridge: Bridge, sandbox: Any, tmp_path: Path
) -> None:
    """An OAuth client with ``routing:queue:edit`` but neither join permission (README: the
    reactivation answers 403 once the user is active, its queues re-added but left unjoined):
    the job fails at restore_queues. Once the client is given the permission, the operator's
    retry sets the flags of the memberships already back (they are not missing, so not added
    again) and the check finds everything back. Before the flags were set in one request from
    what is held, the retry left the re-added queues' flags as they were and held the job."""
    uid, before = _agent(bridge, sandbox, unique_email("nojoin"))
    no_join = _bridge_without(
        sandbox,
        tmp_path,
        "no-join",
        {"routing:queueMember:manage", "routing:queue:join"},
        extra=("routing:queue:edit",),
    )
    try:
        _patch_active(no_join, uid, False)
        _finish_jobs(no_join)
        refused = no_join.patch(f"/Users/{uid}", json=load("okta-patch-activate.json"))
        assert refused.status_code == 403, refused.get_data(as_text=True)
        _finish_jobs(no_join)
        job = next(j for j in jobs.listing(no_join.engine) if j.action == "reactivate")
        assert (job.state, job.step, job.reason) == ("failed", "restore_queues", "permission")
        assert sandbox.control.user(uid)["state"] == "active"
        back = sandbox.control.user(uid)["queues"]
        assert sorted((q["id"], q["joined"]) for q in back) == sorted(
            (q["id"], False) for q in before["queues"]
        )

        sandbox.control.add_client("no-join", "no-join-secret", [*EVERYTHING, "routing:queue:edit"])
        service = no_join.app.extensions["scim_bridge"].deprovisioner.service
        service.retry(job.id, actor="alice")
        _finish_jobs(no_join)
        again = jobs.find(no_join.engine, job.id)
        assert again is not None
        assert (again.state, again.restoration.difference) == ("done", {})
        assert _kept(sandbox.control.user(uid)) == _kept(before)
    finally:
        close_bridge(no_join)


def test_a_refused_restore_is_recorded_and_the_difference_is_on_the_job(
    bridge: Bridge, no_grant_add: Bridge, sandbox: Any
) -> None:
    uid, before = _agent(bridge, sandbox, unique_email("refused"))
    _patch_active(no_grant_add, uid, False)
    _finish_jobs(no_grant_add)
    # Reactivated (the IdP hears 200: the user can log in), roles not restorable.
    _patch_active(no_grant_add, uid, True)
    _finish_jobs(no_grant_add)
    after = sandbox.control.user(uid)
    assert after["state"] == "active"
    assert after["footprint"]["routingSkills"] == before["footprint"]["routingSkills"]
    job = next(j for j in jobs.listing(no_grant_add.engine) if j.action == "reactivate")
    assert (job.state, job.reason) == ("held", "restore-incomplete")
    assert job.restoration.failed["roles"]["status"] == 403
    assert job.restoration.difference is not None
    assert len(job.restoration.difference["roles"]) == 4
    assert "skills" not in job.restoration.difference
    assert "deprovision:footprint:restore-failed" in no_grant_add.tags()
    assert "deprovision:footprint:mismatch" in no_grant_add.tags()


def _deleted(bridge: Bridge, sandbox: Any, uid: str) -> None:
    assert bridge.delete(f"/Users/{uid}").status_code == 204
    _finish_jobs(bridge)
    record = sandbox.control.user(uid)
    assert record["state"] == "deleted"
    assert record["footprint"]["divisionId"] == sandbox.control.info()["home_division_id"]
    tombstone = jobs.tombstone(bridge.engine, uid)
    assert tombstone is not None


def test_rehire_after_delete_restores_the_footprint_when_asked(
    sandbox: Any, tmp_path: Path
) -> None:
    restoring = make_bridge(sandbox, tmp_path, rehire_restore_footprint=True)
    try:
        login = unique_email("rehire-fp")
        uid, before = _agent(restoring, sandbox, login)
        _deleted(restoring, sandbox, uid)
        detail = jobs.tombstone(restoring.engine, uid)
        assert detail is not None
        r = restoring.post("/Users", json=load("okta-create-user.json", username=login))
        assert r.status_code == 201, r.get_data(as_text=True)
        assert r.get_json()["id"] == uid
        _finish_jobs(restoring)
        after = sandbox.control.user(uid)
        assert after["state"] == "active"
        assert _kept(after) == _kept(before)
        rehired = [e for e in restoring.audit_events() if e["tag"] == "scim:user:rehired"]
        assert json.loads(rehired[-1]["detail"])["restore_footprint"] is True
    finally:
        close_bridge(restoring)


def test_rehire_by_default_restores_no_footprint(bridge: Bridge, sandbox: Any) -> None:
    """REHIRE_RESTORE_FOOTPRINT=false: same id, new attributes, in Home with no roles of its own
    (a re-hire may be a different job: the IdP's group rules grant what it needs)."""
    login = unique_email("rehire-plain")
    uid, _ = _agent(bridge, sandbox, login)
    _deleted(bridge, sandbox, uid)
    r = bridge.post("/Users", json=load("okta-create-user.json", username=login))
    assert r.status_code == 201
    assert r.get_json()["id"] == uid
    _finish_jobs(bridge)
    after = sandbox.control.user(uid)
    assert after["state"] == "active"
    assert after["footprint"]["divisionId"] == sandbox.control.info()["home_division_id"]
    assert [g for g in after["footprint"]["grants"] if g["subjectId"] == uid] == []
    # A later deactivation and reactivation restores what the re-hired user held, not the past.
    _patch_active(bridge, uid, False)
    _finish_jobs(bridge)
    _patch_active(bridge, uid, True)
    _finish_jobs(bridge)
    again = sandbox.control.user(uid)
    assert [g for g in again["footprint"]["grants"] if g["subjectId"] == uid] == []
    assert again["queues"] == []
