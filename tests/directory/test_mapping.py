"""SCIM <-> Genesys mapping (docs/scim-mapping.md), pure functions."""

from __future__ import annotations

import dataclasses

from scim_bridge.directory import mapping
from scim_bridge.directory.records import LocalRecord
from scim_bridge.genesys.types import ContactInfo, GenesysUser, UserFields

E = mapping.ENTERPRISE_SCHEMA
USER = GenesysUser(
    id="u1",
    name="Ann Lee",
    email="ann@example.com",
    state="inactive",
    version=7,
    title="Agent",
    department="Ops",
    manager_id="m1",
    employee_id="E1",
    addresses=(
        ContactInfo("+1 555 0100", "PHONE", "WORK"),
        ContactInfo("+1 555 0101", "PHONE", "MOBILE"),
        ContactInfo("ann.work@example.com", "EMAIL", "WORK"),
        ContactInfo("+1 555 0199", "SMS", "OTHER"),
    ),
)
LOCAL = LocalRecord(
    "User", "u1", "2026-01-01T00:00:00.000000Z", "2026-01-02T00:00:00.000000Z",
    external_id="ext-1", owner="okta", given_name="Ann", family_name="Lee", formatted_name="Ann Lee",
)  # fmt: skip


def _render(local: LocalRecord | None = LOCAL) -> dict[str, object]:
    return mapping.user_to_scim(
        USER, local, location="https://b/scim/v2/Users/u1", user_location="https://b/scim/v2/Users"
    )


def test_genesys_user_as_scim() -> None:
    resource = _render()
    assert resource["id"] == "u1"
    assert resource["userName"] == "ann@example.com"
    assert resource["active"] is False  # inactive -> active:false, still a resource
    assert resource["externalId"] == "ext-1"
    assert resource["name"] == {"formatted": "Ann Lee", "givenName": "Ann", "familyName": "Lee"}
    assert resource["emails"] == [{"value": "ann.work@example.com", "type": "work"}]
    assert resource["phoneNumbers"] == [
        {"value": "+1 555 0100", "type": "work"},
        {"value": "+1 555 0101", "type": "mobile"},
    ]
    assert resource[E] == {
        "department": "Ops",
        "employeeNumber": "E1",
        "manager": {"value": "m1", "$ref": "https://b/scim/v2/Users/m1"},
    }
    assert resource["meta"] == {
        "resourceType": "User",
        "location": "https://b/scim/v2/Users/u1",
        "created": "2026-01-01T00:00:00.000000Z",
        "lastModified": "2026-01-02T00:00:00.000000Z",
        "version": 'W/"7"',
    }


def test_unchanged_round_trip_changes_nothing() -> None:
    resource = _render()
    assert mapping.changed_fields(USER, resource, resource) is None


def test_one_change_is_one_field_and_unmapped_contacts_are_kept() -> None:
    before = _render()
    after = {**before, "phoneNumbers": [{"value": "+44 1", "type": "home"}], "title": None}
    changes = mapping.changed_fields(USER, before, after)
    assert changes == UserFields(
        title="",
        addresses=(
            ContactInfo("+1 555 0199", "SMS", "OTHER"),
            ContactInfo("ann.work@example.com", "EMAIL", "WORK"),
            ContactInfo("+44 1", "PHONE", "HOME"),
        ),
    )


def test_create_fields_from_okta_body() -> None:
    body = {
        "userName": "t@example.com",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": "t@example.com", "type": "work"}],
        "phoneNumbers": [{"value": "1", "type": "fax"}],  # no Genesys type: dropped
    }
    fields = mapping.create_fields(body)
    assert fields == UserFields(name="Test User", email="t@example.com")


def test_display_name_precedence() -> None:
    assert mapping.display_name({"displayName": "D", "name": {"formatted": "F"}}) == "D"
    assert mapping.display_name({"name": {"formatted": "F", "givenName": "G"}}) == "F"
    assert mapping.display_name({"name": {"givenName": "G", "familyName": "H"}}) == "G H"
    assert mapping.display_name({}) is None


def test_seeded_user_without_local_record() -> None:
    resource = _render(None)
    # givenName / familyName derived from Genesys's one name (issue 13: Okta's import needs both)
    assert resource["name"] == {"formatted": "Ann Lee", "givenName": "Ann", "familyName": "Lee"}
    assert "externalId" not in resource
    assert "created" not in resource["meta"]


def test_split_name_for_users_the_bridge_did_not_write() -> None:
    """docs/scim-mapping.md "Names for every user"."""
    assert mapping.split_name("Ann Marie  Lee") == ("Ann Marie", "Lee")
    assert mapping.split_name("Lee, Ann") == ("Ann", "Lee")
    assert mapping.split_name("Cher") == ("Cher", "Cher")


WRITTEN = {
    "displayName": "Ann Lee",
    "nickName": "Annie",
    "name": {"givenName": "Ann", "middleName": "Q", "familyName": "Lee"},
    "emails": [{"value": "ann.work@example.com", "type": "work", "primary": True}],
    "phoneNumbers": [
        {"value": "+1 555 0100", "type": "work", "primary": True},
        {"value": "+1 555 0101", "type": "mobile"},
        {"value": "+1 555 0102", "type": "fax"},
    ],
    "title": "Agent",
    E: {
        "department": "Ops",
        "employeeNumber": "E1",
        "costCenter": "CC",
        "manager": {"value": "m1"},
    },
}


def test_the_idps_own_form_is_answered_while_genesys_agrees() -> None:
    local = LocalRecord(
        "User", "u1", "t0", "t1", user_name="ann", attributes=WRITTEN, external_id="ext-1"
    )
    resource = mapping.user_to_scim(USER, local, location="l", user_location="https://b/Users")
    assert resource["userName"] == "ann"
    for key in ("displayName", "nickName", "name", "emails", "phoneNumbers", "title"):
        assert resource[key] == WRITTEN[key], key
    assert resource[E] == {**WRITTEN[E], "manager": {"value": "m1", "$ref": "https://b/Users/m1"}}


def test_a_change_made_in_genesys_shows_instead_of_the_idps_form() -> None:
    local = LocalRecord("User", "u1", "t0", "t1", user_name="ann", attributes=WRITTEN)
    changed = dataclasses.replace(
        USER, title="Lead", department="Sales", addresses=USER.addresses[:1], email="x@example.com"
    )
    resource = mapping.user_to_scim(changed, local, location="l", user_location="u")
    assert resource["title"] == "Lead"
    assert resource[E]["department"] == "Sales"
    assert resource[E]["costCenter"] == "CC"  # kept by the bridge
    assert resource["phoneNumbers"] == [{"value": "+1 555 0100", "type": "work"}]
    assert resource["emails"] == [{"value": "x@example.com", "type": "work"}]
    assert resource["name"] == WRITTEN["name"]
