"""Replays of what Okta and Entra really send (shared/idp-behaviour.md), one per quirk in
``scim_bridge/scim/quirks.py``, through the bridge to the sandbox; end state asserted there."""

from __future__ import annotations

from typing import Any

from scim_bridge.scim.quirks import normalise_patch, normalise_resource
from tests.fixtures.bridge import Bridge
from tests.scim.replay import create_user, load, unique_email

E = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _user(sandbox: Any, user_id: str) -> dict[str, Any]:
    record: dict[str, Any] = sandbox.control.user(user_id)
    return record


# --- Okta -----------------------------------------------------------------------------------


def test_okta_create_drops_placeholder_password_and_echoed_groups(
    bridge: Bridge, sandbox: Any
) -> None:
    """O-20: the password is always sent and meaningless; ``groups: []`` is read-only."""
    created = create_user(bridge, "okta-create-user.json")
    assert "password" not in created
    assert "groups" not in created
    assert created["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert created["name"] == {"givenName": "Test", "familyName": "User"}
    assert _user(sandbox, created["id"])["name"] == "Test User"


def test_okta_put_echoing_id_meta_with_non_iso_dates_is_accepted(
    bridge: Bridge, sandbox: Any
) -> None:
    """O-OLD: Okta's PUT echoes our GET, id and meta (``"04-12-2018 00:00:00"``) included."""
    created = create_user(bridge)
    body = load("okta-put-user-echo.json", id=created["id"], username=created["userName"])
    response = bridge.put(f"/Users/{created['id']}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["displayName"] == "Test Renamed"
    assert response.get_json()["meta"]["created"] != "04-12-2018 00:00:00"
    assert _user(sandbox, created["id"])["name"] == "Test Renamed"


def test_okta_group_rename_with_own_id_in_value(bridge: Bridge) -> None:
    """O-OLD: the rename PATCH carries the group's own id inside a path-less value."""
    group = bridge.post(
        "/Groups", json=load("okta-group-create.json", groupname="Okta Push")
    ).get_json()
    body = load("okta-group-rename-with-id.json", id=group["id"], groupname="Okta Renamed")
    response = bridge.patch(f"/Groups/{group['id']}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["displayName"] == "Okta Renamed"
    other = load("okta-group-rename-with-id.json", id="someone-else", groupname="X")
    refused = bridge.patch(f"/Groups/{group['id']}", json=other)
    assert refused.status_code == 400
    assert refused.get_json()["scimType"] == "mutability"


# --- Entra ----------------------------------------------------------------------------------


def test_entra_string_true_on_create_becomes_boolean(bridge: Bridge) -> None:
    """E-REF "Post emp1 with string True": 201 with ``active: true`` as a boolean."""
    created = create_user(bridge.entra, "entra-create-user-string-active.json")
    assert created["active"] is True


def test_entra_explicit_nulls_on_create_are_absent(bridge: Bridge) -> None:
    """E-TUT Example 2 / E-KNOWN: ``"addresses": null``, ``"manager": null`` and friends."""
    created = create_user(bridge.entra, "entra-create-user-nulls.json")
    assert "title" not in created
    assert "manager" not in created.get(E, {})
    assert created["name"]["givenName"] == "Null"


def test_entra_capitalised_ops_and_legacy_paths(bridge: Bridge, sandbox: Any) -> None:
    """E-KI without aadOptscim062020: ``Replace``/``Add``, one operation per attribute."""
    created = create_user(bridge.entra, "entra-create-user.json")
    new_login = unique_email("legacy")
    work = unique_email("work")
    body = load("entra-patch-legacy-update.json", username=new_login, workemail=work)
    response = bridge.entra.patch(f"/Users/{created['id']}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    user = response.get_json()
    assert user["displayName"] == "Legacy Name"
    assert user["name"]["givenName"] == "Legacy"
    assert user["name"]["familyName"] == "Name"
    assert user["externalId"] == "legacy-ext"
    assert user["userName"] == new_login
    # the created entry's primary flag is kept as written (issue 13: no drift)
    assert user["emails"] == [{"value": work, "type": "work", "primary": True}]
    assert user[E]["employeeNumber"] == "42"
    record = _user(sandbox, created["id"])
    assert record["email"] == new_login
    assert record["title"] == "Engineer"
    assert record["employerInfo"]["employeeId"] == "42"


def test_entra_flag_pathless_replace_with_dotted_and_urn_keys(bridge: Bridge, sandbox: Any) -> None:
    """E-KI aadOptscim062020: a naive server would store a literal ``name.givenName`` key."""
    created = create_user(bridge.entra, "entra-create-user.json")
    body = load("entra-patch-flag-pathless.json", workemail=created["userName"])
    response = bridge.entra.patch(f"/Users/{created['id']}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    user = response.get_json()
    assert "name.givenName" not in user
    assert user["name"]["givenName"] == "Flag"
    assert user[E]["employeeNumber"] == "43"
    assert user[E]["department"] == "Dept Flag"
    assert _user(sandbox, created["id"])["department"] == "Dept Flag"


def test_entra_manager_as_bare_string_then_list_then_empty(bridge: Bridge, sandbox: Any) -> None:
    """SCIM-SDK#541 (bare string), E-TUT Example 5 (``manager`` path, one-element list),
    E-LA SCIM_Update_Manager_Test (Replace with an empty value removes it)."""
    manager = create_user(bridge.entra, "entra-create-user.json")
    other = create_user(bridge.entra, "entra-create-user.json")
    user = create_user(bridge.entra, "entra-create-user.json")
    uid = user["id"]
    r = bridge.entra.patch(
        f"/Users/{uid}", json=load("entra-patch-manager-string.json", manager=manager["id"])
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()[E]["manager"]["value"] == manager["id"]
    assert _user(sandbox, uid)["manager"]["id"] == manager["id"]
    r = bridge.entra.patch(
        f"/Users/{uid}", json=load("entra-patch-manager-list.json", manager=other["id"])
    )
    assert r.get_json()[E]["manager"]["value"] == other["id"]
    r = bridge.entra.patch(f"/Users/{uid}", json=load("entra-patch-manager-empty.json"))
    assert r.status_code == 200
    assert "manager" not in r.get_json().get(E, {})
    assert "manager" not in _user(sandbox, uid)


def test_entra_manager_removed_by_value_filter(bridge: Bridge, sandbox: Any) -> None:
    """thomaspoignant/scim-patch#453: ``remove`` with ``manager[value eq "..."]``."""
    manager = create_user(bridge.entra, "entra-create-user.json")
    uid = create_user(bridge.entra, "entra-create-user.json")["id"]
    bridge.entra.patch(
        f"/Users/{uid}", json=load("entra-patch-manager-string.json", manager=manager["id"])
    )
    r = bridge.entra.patch(
        f"/Users/{uid}", json=load("entra-patch-manager-remove-filter.json", manager=manager["id"])
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert "manager" not in _user(sandbox, uid)


def test_entra_add_to_missing_work_email_and_mobile_creates_them(
    bridge: Bridge, sandbox: Any
) -> None:
    """SCIM-SDK#416: ``add`` on ``emails[type eq "work"].value`` with no such entry creates it."""
    login = unique_email("login")
    created = bridge.entra.post(
        "/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": login},
    ).get_json()
    assert "emails" not in created
    work = unique_email("work")
    r = bridge.entra.patch(
        f"/Users/{created['id']}",
        json=load("entra-patch-add-work-email-and-mobile.json", workemail=work),
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    user = r.get_json()
    assert user["emails"] == [{"value": work, "type": "work"}]
    assert user["phoneNumbers"] == [{"value": "+44 7700 900123", "type": "mobile"}]
    addresses = _user(sandbox, created["id"])["addresses"]
    assert {"address": "+44 7700 900123", "mediaType": "PHONE", "type": "MOBILE"}.items() <= next(
        a for a in addresses if a["mediaType"] == "PHONE"
    ).items()


def test_entra_empty_and_null_values_clear(bridge: Bridge, sandbox: Any) -> None:
    """E-LA SCIM_Null_Update_Test: Replace with ``""`` and then ``null`` clears the attribute."""
    created = create_user(bridge.entra, "entra-create-user.json")
    bridge.entra.patch(
        f"/Users/{created['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "title", "value": "Temp"}],
        },
    )
    r = bridge.entra.patch(f"/Users/{created['id']}", json=load("entra-patch-null-update.json"))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert "title" not in r.get_json()
    assert "department" not in r.get_json().get(E, {})
    record = _user(sandbox, created["id"])
    assert not record.get("title")
    assert not record.get("department")


def test_entra_group_with_non_urn_schema_and_legacy_member_removal(
    bridge: Bridge, sandbox: Any
) -> None:
    """E-TUT: the ADSCIM schema in ``schemas`` is no 400; E-KI legacy ``Remove`` with a value list
    removes only the listed member (a literal RFC server removes everyone: azure-docs#30826)."""
    a = create_user(bridge.entra, "entra-create-user.json")["id"]
    b = create_user(bridge.entra, "entra-create-user.json")["id"]
    r = bridge.entra.post("/Groups", json=load("entra-group-create.json", groupname="Entra Group"))
    assert r.status_code == 201, r.get_data(as_text=True)
    gid = r.get_json()["id"]
    r = bridge.entra.patch(
        f"/Groups/{gid}", json=load("entra-group-add-members.json", add=a, add2=b)
    )
    assert r.status_code == 204, r.get_data(as_text=True)  # E-TUT: "Add members" -> 204
    assert {g["id"] for g in _user(sandbox, a)["groups"]} == {gid}
    r = bridge.entra.patch(
        f"/Groups/{gid}", json=load("entra-group-remove-members-legacy.json", remove=a)
    )
    assert r.status_code == 204
    members = bridge.entra.get(f"/Groups/{gid}").get_json()["members"]
    assert [m["value"] for m in members] == [b]
    assert _user(sandbox, a)["groups"] == []
    assert [g["id"] for g in _user(sandbox, b)["groups"]] == [gid]


# --- the normalisation itself (no HTTP) -------------------------------------------------------


def test_normalise_patch_leaves_the_input_untouched() -> None:
    body = load("entra-patch-active-string.json")
    before = repr(body)
    out = normalise_patch(body)
    assert repr(body) == before
    assert out["Operations"] == [{"op": "replace", "path": "active", "value": False}]


def test_normalise_legacy_member_removal_becomes_filtered_removes() -> None:
    out = normalise_patch(load("entra-group-remove-members-legacy.json", remove="u1"))
    assert out["Operations"] == [{"op": "remove", "path": 'members[value eq "u1"]'}]


def test_normalise_resource_drops_password_meta_groups_and_own_id() -> None:
    body = load("okta-put-user-echo.json", id="abc", username="x@example.com")
    out = normalise_resource(body, resource_id="abc")
    assert not {"password", "meta", "groups", "id"} & set(out)
