"""Re-hire (issue 12): ``POST /Users`` with the email of a user Genesys holds as deleted restores
that user (same Genesys id, new attributes, 201) unless REHIRE=refuse; a GDPR-deleted user is a
clear 409 (genesys-api.md 2.4, 2.5; TF ``createUser`` -> ``restoreDeletedUser``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.bridge import Bridge, close_bridge, make_bridge
from tests.scim.replay import load, unique_email


def _finish_jobs(bridge: Bridge) -> None:
    bridge.app.extensions["scim_bridge"].deprovisioner.worker.run_until_idle(timeout_s=60)


def _created(bridge: Bridge, login: str, **fields: Any) -> str:
    body = load("okta-create-user.json", username=login)
    body.update(fields)
    r = bridge.post("/Users", json=body)
    assert r.status_code == 201, r.get_data(as_text=True)
    return str(r.get_json()["id"])


def _deleted_through_the_bridge(bridge: Bridge, sandbox: Any, login: str) -> str:
    uid = _created(bridge, login, title="Agent")
    assert bridge.delete(f"/Users/{uid}").status_code == 204
    _finish_jobs(bridge)
    assert sandbox.control.user(uid)["state"] == "deleted"
    return uid


def test_rehire_after_delete_restores_the_same_id_with_new_attributes_2_5(
    bridge: Bridge, sandbox: Any
) -> None:
    login = unique_email("rehire")
    uid = _deleted_through_the_bridge(bridge, sandbox, login)
    body = load("okta-create-user.json", username=login)
    body["title"] = "Senior Agent"
    r = bridge.post("/Users", json=body)
    assert r.status_code == 201, r.get_data(as_text=True)
    resource = r.get_json()
    assert resource["id"] == uid  # the same Genesys id: last year's reports name the same person
    assert resource["active"] is True
    assert resource["title"] == "Senior Agent"
    record = sandbox.control.user(uid)
    assert record["state"] == "active"
    assert record["title"] == "Senior Agent"
    assert bridge.get(f"/Users/{uid}").status_code == 200
    rehired = [e for e in bridge.audit_events() if e["tag"] == "scim:user:rehired"]
    assert len(rehired) == 1
    assert rehired[0]["scim_id"] == uid
    assert json.loads(rehired[0]["detail"])["found_by"] == "tombstone"


def test_rehire_carries_only_the_new_attributes_not_the_previous_lifes_contacts(
    bridge: Bridge, sandbox: Any
) -> None:
    """The re-hire's POST is the whole new resource: what the deleted user held and the POST
    does not set (another work email, a mobile, a title, a department) is not carried over; a
    reused address may belong to another person now."""
    login = unique_email("relife")
    uid = _created(
        bridge,
        login,
        title="Agent",
        emails=[{"primary": True, "type": "work", "value": unique_email("old-work")}],
        phoneNumbers=[{"type": "mobile", "value": "+15551234567"}],
    )
    assert bridge.delete(f"/Users/{uid}").status_code == 204
    _finish_jobs(bridge)
    body = load("okta-create-user.json", username=login)
    body["emails"] = [{"primary": True, "type": "work", "value": login}]
    body.pop("title", None)

    r = bridge.post("/Users", json=body)

    assert r.status_code == 201, r.get_data(as_text=True)
    resource = r.get_json()
    assert resource["id"] == uid
    assert "phoneNumbers" not in resource
    assert "title" not in resource
    assert [e["value"] for e in resource.get("emails", [])] in ([], [login])
    record = sandbox.control.user(uid)
    assert record.get("title") in (None, "")
    assert record.get("addresses") in (None, [])


def test_rehire_of_a_user_deleted_outside_the_bridge_found_by_search(
    bridge: Bridge, sandbox: Any
) -> None:
    login = unique_email("elsewhere")
    uid = _created(bridge, login)
    # An admin deletes the user in Genesys directly: the bridge has no tombstone for it.
    gateway = bridge.app.extensions["scim_bridge"].gateway
    gateway.delete_user(uid)
    r = bridge.post(
        "/Users", json={**load("okta-create-user.json", username=login), "active": False}
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["id"] == uid
    assert r.get_json()["active"] is False
    assert sandbox.control.user(uid)["state"] == "inactive"
    assert any(
        e["tag"] == "scim:user:rehired" and json.loads(e["detail"])["found_by"] == "search"
        for e in bridge.audit_events()
    )


def test_a_taken_email_of_a_live_user_is_still_409(bridge: Bridge) -> None:
    login = unique_email("live")
    _created(bridge, login)
    dup = bridge.post("/Users", json=load("okta-create-user.json", username=login))
    assert dup.status_code == 409
    assert dup.get_json()["scimType"] == "uniqueness"
    assert "scim:user:rehired" not in bridge.tags()


def test_gdpr_deleted_user_is_a_clear_409_2_4(bridge: Bridge, sandbox: Any) -> None:
    login = unique_email("gdpr")
    uid = _deleted_through_the_bridge(bridge, sandbox, login)
    sandbox.control.gdpr_delete(uid)
    r = bridge.post("/Users", json=load("okta-create-user.json", username=login))
    assert r.status_code == 409, r.get_data(as_text=True)
    assert r.get_json()["scimType"] == "uniqueness"
    assert "GDPR" in r.get_json()["detail"]
    assert sandbox.control.user(uid)["state"] == "deleted"
    refused = [e for e in bridge.audit_events() if e["tag"] == "scim:user:refused"]
    assert refused[-1]["outcome"] == "unrestorable"


@pytest.fixture
def refusing_bridge(sandbox: Any, tmp_path: Path) -> Iterator[Bridge]:
    made = make_bridge(sandbox, tmp_path, rehire="refuse")
    yield made
    close_bridge(made)


def test_rehire_refused_when_configured(refusing_bridge: Bridge, sandbox: Any) -> None:
    login = unique_email("refused")
    uid = _deleted_through_the_bridge(refusing_bridge, sandbox, login)
    r = refusing_bridge.post("/Users", json=load("okta-create-user.json", username=login))
    assert r.status_code == 409
    assert "REHIRE=refuse" in r.get_json()["detail"]
    assert sandbox.control.user(uid)["state"] == "deleted"
    assert "scim:user:rehired" not in refusing_bridge.tags()
