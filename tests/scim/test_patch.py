"""PATCH applied to a SCIM resource (RFC 7644 §3.5.2), without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from scim_bridge.scim.errors import InvalidPath, InvalidValue, Mutability, NoTarget, ScimError
from scim_bridge.scim.patch import apply_patch, parse_operations, parse_path

E = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
P = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _apply(
    resource: dict[str, Any], *operations: dict[str, Any], kind: str = "User"
) -> dict[str, Any]:
    return apply_patch(
        resource, parse_operations({"schemas": [P], "Operations": list(operations)}), kind
    )


BASE: dict[str, Any] = {
    "id": "u1",
    "userName": "a@example.com",
    "name": {"givenName": "A", "familyName": "B"},
    "emails": [{"value": "a@example.com", "type": "work"}],
    "phoneNumbers": [{"value": "1", "type": "work"}, {"value": "2", "type": "mobile"}],
}


def test_replace_simple_and_sub_attribute() -> None:
    out = _apply(
        BASE,
        {"op": "replace", "path": "displayName", "value": "X"},
        {"op": "replace", "path": "name.givenName", "value": "Z"},
    )
    assert out["displayName"] == "X"
    assert out["name"] == {"givenName": "Z", "familyName": "B"}
    assert BASE["name"]["givenName"] == "A"  # input untouched


def test_pathless_add_merges_complex_attributes() -> None:
    """§3.5.2.1: sub-attributes not given are left as they are."""
    out = _apply(BASE, {"op": "add", "value": {"name": {"formatted": "A B"}, "title": "T"}})
    assert out["name"] == {"givenName": "A", "familyName": "B", "formatted": "A B"}
    assert out["title"] == "T"


def test_value_filter_paths() -> None:
    out = _apply(
        BASE, {"op": "replace", "path": 'phoneNumbers[type eq "mobile"].value', "value": "9"}
    )
    assert out["phoneNumbers"] == [{"value": "1", "type": "work"}, {"value": "9", "type": "mobile"}]
    out = _apply(BASE, {"op": "remove", "path": 'phoneNumbers[type eq "work"]'})
    assert out["phoneNumbers"] == [{"value": "2", "type": "mobile"}]
    out = _apply(BASE, {"op": "add", "path": 'phoneNumbers[type eq "home"].value', "value": "3"})
    assert out["phoneNumbers"][-1] == {"type": "home", "value": "3"}
    with pytest.raises(NoTarget):
        _apply(BASE, {"op": "replace", "path": 'phoneNumbers[type eq "home"].value', "value": "3"})


def test_multi_valued_add_appends_and_replace_replaces() -> None:
    out = _apply(
        BASE, {"op": "add", "path": "phoneNumbers", "value": [{"value": "3", "type": "home"}]}
    )
    assert len(out["phoneNumbers"]) == 3
    out = _apply(
        BASE, {"op": "replace", "path": "phoneNumbers", "value": [{"value": "3", "type": "home"}]}
    )
    assert out["phoneNumbers"] == [{"value": "3", "type": "home"}]
    out = _apply(BASE, {"op": "remove", "path": "phoneNumbers"})
    assert "phoneNumbers" not in out


def test_enterprise_urn_paths() -> None:
    out = _apply(BASE, {"op": "add", "path": f"{E}:department", "value": "Ops"})
    assert out[E] == {"department": "Ops"}
    assert E in out.get("schemas", [])
    out = _apply(out, {"op": "replace", "path": f"{E}:manager.value", "value": "m1"})
    assert out[E]["manager"] == {"value": "m1"}
    out = _apply(out, {"op": "add", "path": E, "value": {"employeeNumber": "7"}})
    assert out[E] == {"department": "Ops", "manager": {"value": "m1"}, "employeeNumber": "7"}
    out = _apply(out, {"op": "remove", "path": E})
    assert E not in out


def test_group_member_operations() -> None:
    group = {"id": "g", "displayName": "G", "members": [{"value": "a"}, {"value": "b"}]}
    out = _apply(group, {"op": "remove", "path": 'members[value eq "a"]'}, kind="Group")
    assert out["members"] == [{"value": "b"}]
    out = _apply(
        group,
        {"op": "add", "path": "members", "value": [{"value": "b"}, {"value": "c"}]},
        kind="Group",
    )
    assert [m["value"] for m in out["members"]] == ["a", "b", "c"]
    out = _apply(group, {"op": "remove", "path": 'members[value eq "zzz"]'}, kind="Group")
    assert out["members"] == group["members"]  # removing a non-member is a no-op


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        ({"op": "remove"}, NoTarget),
        ({"op": "replace", "path": "id", "value": "x"}, Mutability),
        ({"op": "replace", "path": "meta.version", "value": "x"}, Mutability),
        ({"op": "replace", "path": "groups", "value": []}, Mutability),
        ({"op": "replace", "path": "a b", "value": "x"}, InvalidPath),
        ({"op": "replace", "path": "emails[", "value": "x"}, InvalidPath),
        ({"op": "replace", "value": "not an object"}, InvalidValue),
        (
            {
                "op": "add",
                "path": "urn:ietf:params:scim:schemas:extension:scim-bridge:2.0:User:deprovisioning",
                "value": {},
            },
            Mutability,
        ),
    ],
)
def test_refusals(operation: dict[str, Any], error: type[ScimError]) -> None:
    with pytest.raises(error):
        _apply(BASE, operation)


def test_parse_path_shapes() -> None:
    path = parse_path('emails[type eq "work"].value')
    assert path.attr == "emails"
    assert path.sub == "value"
    assert path.value_filter is not None
    path = parse_path("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName")
    assert (path.uri, path.attr, path.sub) == (None, "name", "givenName")
    assert parse_path(E).attr is None
