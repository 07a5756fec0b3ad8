"""The catalogue's marshmallow schemas (issue 9 item 6): loading and dumping derived from
``definitions``, one source of truth with ``/Schemas``."""

from __future__ import annotations

from typing import Any

import pytest

from scim_bridge.scim import definitions
from scim_bridge.scim.errors import InvalidSyntax, InvalidValue
from scim_bridge.scim.schemas import dump_resource, load_resource

U = definitions.USER_SCHEMA
E = definitions.ENTERPRISE_SCHEMA
B = definitions.BRIDGE_SCHEMA


def test_load_spells_names_canonically_and_drops_what_is_not_kept() -> None:
    """RFC 7643 §2.1 (case-insensitive names), §7 (readOnly ignored on input), RFC 7644 §3.3
    (unknown attributes ignored); null and empty values are unassigned (§2.5)."""
    loaded = load_resource(
        {
            "schemas": [U, E],
            "USERNAME": "jdoe",
            "id": "client-id",
            "meta": {"created": "x"},
            "password": "secret",
            "roles": [],
            "x-custom": 1,
            "name": {"GIVENNAME": "Ann", "middleName": None, "familyName": ""},
            "emails": [{"Value": "a@example.com", "TYPE": "work", "primary": True}],
            E.upper(): {"department": "Ops", "manager": {"value": "m1", "displayName": "ro"}},
            B: {"deprovisioning": {"jobId": "j"}},
        },
        "User",
    )
    assert loaded == {
        "schemas": [U, E],
        "userName": "jdoe",
        "name": {"givenName": "Ann"},
        "emails": [{"value": "a@example.com", "type": "work", "primary": True}],
        E: {"department": "Ops", "manager": {"value": "m1"}},
    }


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "userName"),
        ({"userName": 5}, "userName"),
        ({"userName": "a", "active": "true"}, "active"),
        ({"userName": "a", "emails": [{"value": "a@b", "primary": "yes"}]}, "emails.primary"),
        ({"userName": "a", "name": {"honorificPrefix": "x" * 1025}}, "name.honorificPrefix"),
        ({"userName": "a", "externalId": "x" * 401}, "externalId"),
        ({"userName": "a", E: {"costCenter": "\ud83d"}}, f"{E}:costCenter"),
        ({"userName": "a", "addresses": [{"locality": "\x00"}]}, "addresses.locality"),
    ],
)
def test_load_refuses_with_the_attribute_named(body: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        load_resource(body, "User")
    assert named in caught.value.detail


def test_load_of_a_non_object_is_invalid_syntax() -> None:
    with pytest.raises(InvalidSyntax):
        load_resource([], "User")


def test_group_members_need_a_value() -> None:
    with pytest.raises(InvalidValue) as caught:
        load_resource({"displayName": "g", "members": [{"display": "x"}]}, "Group")
    assert "members.value" in caught.value.detail


RESOURCE = {
    "schemas": [U, E],
    "id": "u1",
    "userName": "jdoe",
    "name": {"givenName": "Ann", "familyName": "Lee"},
    "emails": [{"value": "a@example.com", "type": "work"}],
    "password": "never returned",
    "notInTheCatalogue": 1,
    E: {"department": "Ops", "manager": {"value": "m1", "$ref": "https://b/Users/m1"}},
    "meta": {"resourceType": "User"},
}


def test_dump_returns_only_catalogue_attributes_never_a_password() -> None:
    dumped = dump_resource(RESOURCE, "User")
    assert "password" not in dumped
    assert "notInTheCatalogue" not in dumped
    assert list(dumped) == ["schemas", "id", "userName", "name", "emails", E, "meta"]
    assert "password" not in dump_resource(RESOURCE, "User", ["password", "userName"])


def test_attributes_projection_keeps_id_and_schemas() -> None:
    """RFC 7644 §3.4.2.5."""
    dumped = dump_resource(
        RESOURCE, "User", ["NAME.givenName", "emails.value", f"{E}:manager.value"]
    )
    assert dumped == {
        "schemas": [U, E],
        "id": "u1",
        "name": {"givenName": "Ann"},
        "emails": [{"value": "a@example.com"}],
        E: {"manager": {"value": "m1"}},
    }
    assert dump_resource(RESOURCE, "User", [E, "unknownAttr"]) == {
        "schemas": [U, E],
        "id": "u1",
        E: RESOURCE[E],
    }


def test_excluded_attributes_never_drop_id() -> None:
    dumped = dump_resource(RESOURCE, "User", (), ["id", "name.familyName", "emails", E])
    assert dumped == {
        "schemas": [U, E],
        "id": "u1",
        "userName": "jdoe",
        "name": {"givenName": "Ann"},
        "meta": {"resourceType": "User"},
    }
