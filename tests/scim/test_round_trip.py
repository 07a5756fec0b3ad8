"""What the IdP writes, it reads back (issue 13): every attribute ``/Schemas`` advertises.

The values are generated from the bridge's own ``/Schemas`` answer, so an attribute added to the
catalogue is covered without touching this file, and one that is advertised but does not round-trip
fails here. Written through POST, PUT and each PATCH form (path-less, path, ``add``, sub-attribute
and value-filter paths, Entra's dotted/URN keys, ``remove``), each read back with GET.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from scim_bridge.genesys.types import UserFields
from tests.fixtures.bridge import Bridge
from tests.scim.replay import create_user, unique_email

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# The bridge never builds URLs from the Host header (issue 14): without SCIM_BRIDGE_PUBLIC_URL
# (as here) its references are relative to its own root, and the manager's $ref reads back so.
BASE = "/scim/v2"


def _writable(attribute: dict[str, Any]) -> bool:
    return attribute["mutability"] in ("readWrite", "writeOnly", "immutable") and (
        attribute["returned"] != "never"
    )


def _schemas(bridge: Bridge) -> dict[str, list[dict[str, Any]]]:
    listed = bridge.get("/Schemas").get_json()["Resources"]
    by_id = {s["id"]: s["attributes"] for s in listed}
    return {
        USER: [a for a in by_id[USER] if _writable(a) and a["name"] not in ("active",)],
        ENTERPRISE: [a for a in by_id[ENTERPRISE] if _writable(a)],
    }


class Values:
    """Distinct, valid values for every advertised attribute; ``tag`` makes each set new."""

    def __init__(self, manager_id: str) -> None:
        self.manager_id = manager_id
        self.counter = 0

    def string(self, name: str, tag: str) -> str:
        self.counter += 1
        return f"{name}-{tag}-{self.counter}"

    def leaf(self, path: str, attribute: dict[str, Any], tag: str) -> Any:
        if attribute["type"] == "boolean":
            return True
        if attribute.get("canonicalValues"):
            return attribute["canonicalValues"][0]
        make = self._by_path(tag).get(path)
        if make is not None:
            return make()
        if attribute["type"] == "reference":
            return f"https://example.com/{tag}/{uuid.uuid4().hex[:6]}"
        return self.string(attribute["name"], tag)

    def _by_path(self, tag: str) -> dict[str, Callable[[], Any]]:
        """Values that must have a shape of their own (a unique email, a phone, the manager)."""
        return {
            "emails.value": lambda: unique_email(tag.lower()),
            "phoneNumbers.value": lambda: f"+1 555 {uuid.uuid4().int % 10000:04d}",
            "manager.value": lambda: self.manager_id,
            "manager.$ref": lambda: f"{BASE}/Users/{self.manager_id}",
        }

    def value(self, attribute: dict[str, Any], tag: str) -> Any:
        name = attribute["name"]
        if name == "userName":
            return f"rt-{tag}-{uuid.uuid4().hex[:8]}"  # not an email: the login is the work email
        if attribute["type"] == "complex":
            item = {
                sub["name"]: self.leaf(f"{name}.{sub['name']}", sub, tag)
                for sub in attribute["subAttributes"]
                if _writable(sub)
            }
            if attribute["multiValued"]:
                second = {**item, "primary": False}
                for key in second:
                    if key not in ("type", "primary"):
                        second[key] = self.leaf(f"{name}.{key}", _sub(attribute, key), tag + "b")
                second["type"] = _sub(attribute, "type").get("canonicalValues", ["other"])[-1]
                return [item, second]
            return item
        return self.leaf(name, attribute, tag)

    def resource(self, schemas: dict[str, list[dict[str, Any]]], tag: str) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [USER, ENTERPRISE]}
        for attribute in schemas[USER]:
            body[attribute["name"]] = self.value(attribute, tag)
        body[ENTERPRISE] = {a["name"]: self.value(a, tag) for a in schemas[ENTERPRISE]}
        body.pop("password", None)
        return body


def _sub(attribute: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in attribute["subAttributes"] if s["name"] == name)
    return found


def _assert_reads_back(bridge: Bridge, uid: str, written: dict[str, Any]) -> dict[str, Any]:
    read: dict[str, Any] = bridge.get(f"/Users/{uid}").get_json()
    for key, value in written.items():
        if key in ("schemas", "password"):
            continue
        assert read.get(key) == value, (key, value, read.get(key))
    return {k: v for k, v in read.items() if k not in ("id", "meta", "schemas", "active")}


def _patch(bridge: Bridge, uid: str, *operations: dict[str, Any]) -> None:
    response = bridge.patch(
        f"/Users/{uid}", json={"schemas": [PATCH], "Operations": list(operations)}
    )
    assert response.status_code in (200, 204), response.get_data(as_text=True)


@pytest.fixture
def setup(bridge: Bridge) -> tuple[dict[str, list[dict[str, Any]]], Values]:
    manager = create_user(bridge)["id"]
    return _schemas(bridge), Values(manager)


def test_schemas_advertise_the_attributes_okta_and_entra_send(bridge: Bridge) -> None:
    """idp-behaviour.md: Okta's default profile and Entra's default mappings."""
    schemas = _schemas(bridge)
    core = {a["name"]: a for a in schemas[USER]}
    for name in (
        "userName", "name", "displayName", "nickName", "profileUrl", "title", "userType",
        "preferredLanguage", "locale", "timezone", "emails", "phoneNumbers", "addresses",
    ):  # fmt: skip
        assert name in core, name
    assert {s["name"] for s in core["name"]["subAttributes"]} >= {
        "formatted", "givenName", "familyName", "middleName", "honorificPrefix", "honorificSuffix"
    }  # fmt: skip
    enterprise = {a["name"] for a in schemas[ENTERPRISE]}
    assert enterprise >= {
        "employeeNumber", "costCenter", "organization", "division", "department", "manager"
    }  # fmt: skip


def test_post_and_put_read_back_every_advertised_attribute(
    bridge: Bridge, setup: tuple[dict[str, list[dict[str, Any]]], Values]
) -> None:
    schemas, values = setup
    body = values.resource(schemas, "post")
    response = bridge.post("/Users", json={**body, "password": "never-stored"})
    assert response.status_code == 201, response.get_data(as_text=True)
    uid = response.get_json()["id"]
    _assert_reads_back(bridge, uid, body)
    replaced = values.resource(schemas, "put")
    response = bridge.put(f"/Users/{uid}", json={**replaced, "password": "never-stored"})
    assert response.status_code == 200, response.get_data(as_text=True)
    _assert_reads_back(bridge, uid, replaced)
    assert "password" not in bridge.get(f"/Users/{uid}").get_json()
    with bridge.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT * FROM directory_resources")).all()
    assert stored
    assert "never-stored" not in repr(stored)


Schemas = dict[str, list[dict[str, Any]]]


def _patch_each_attribute(
    bridge: Bridge,
    uid: str,
    schemas: Schemas,
    body: dict[str, Any],
    op: str,
    expected: dict[str, Any],
) -> dict[str, Any]:
    """One operation per attribute, with a path; what the user now reads back."""
    operations = [
        {"op": op, "path": k, "value": v} for k, v in body.items() if k not in ("schemas",)
    ]
    operations = [o for o in operations if o["path"] != ENTERPRISE] + [
        {"op": op, "path": f"{ENTERPRISE}:{k}", "value": v} for k, v in body[ENTERPRISE].items()
    ]
    _patch(bridge, uid, *operations)
    wanted = dict(body)
    if op == "add":
        for attribute in schemas[USER]:
            if attribute["multiValued"]:
                name = attribute["name"]
                wanted[name] = expected[name] + body[name]
    return _assert_reads_back(bridge, uid, wanted)


def _patch_sub_attributes(
    bridge: Bridge, uid: str, schemas: Schemas, values: Values, expected: dict[str, Any]
) -> None:
    """Each sub-attribute of each single-valued complex attribute, by its own path."""
    for attribute in schemas[USER]:
        if attribute["type"] == "complex" and not attribute["multiValued"]:
            for sub in attribute["subAttributes"]:
                new = values.leaf(f"{attribute['name']}.{sub['name']}", sub, "sub")
                _patch(
                    bridge,
                    uid,
                    {"op": "replace", "path": f"{attribute['name']}.{sub['name']}", "value": new},
                )
                expected[attribute["name"]][sub["name"]] = new


def _patch_through_value_filters(
    bridge: Bridge, uid: str, schemas: Schemas, values: Values, expected: dict[str, Any]
) -> None:
    """Each sub-attribute of the first element of each multi-valued attribute, by a value filter."""
    for attribute in schemas[USER]:
        if not (attribute["type"] == "complex" and attribute["multiValued"]):
            continue
        name = attribute["name"]
        first_type = expected[name][0]["type"]
        for sub in attribute["subAttributes"]:
            if sub["name"] in ("type", "primary"):
                continue
            new = values.leaf(f"{name}.{sub['name']}", sub, "filter")
            _patch(
                bridge,
                uid,
                {
                    "op": "replace",
                    "path": f'{name}[type eq "{first_type}"].{sub["name"]}',
                    "value": new,
                },
            )
            expected[name][0][sub["name"]] = new


def test_every_patch_form_reads_back_unchanged(
    bridge: Bridge, setup: tuple[dict[str, list[dict[str, Any]]], Values]
) -> None:
    schemas, values = setup
    response = bridge.post("/Users", json=values.resource(schemas, "base"))
    assert response.status_code == 201, response.get_data(as_text=True)
    uid = response.get_json()["id"]

    # 1. One path-less replace carrying every attribute (Okta's shape).
    body = values.resource(schemas, "pathless")
    value = {k: v for k, v in body.items() if k != "schemas"}
    _patch(bridge, uid, {"op": "replace", "value": value})
    expected = _assert_reads_back(bridge, uid, body)

    # 2. add and 3. replace, one operation per attribute with a path (Entra's legacy shape,
    #    capitalised ops included). ``add`` appends to a multi-valued attribute (RFC 7644
    #    §3.5.2.1); the ``replace`` that follows leaves only the new values.
    for op, tag in (("add", "addpath"), ("Replace", "path")):
        expected = _patch_each_attribute(
            bridge, uid, schemas, values.resource(schemas, tag), op, expected
        )

    # 4. Sub-attribute paths of single-valued complex attributes (name.middleName, ...), and
    #    Entra's aadOptscim062020 path-less form with dotted and URN-qualified keys.
    _patch_sub_attributes(bridge, uid, schemas, values, expected)
    flagged = {
        "name.givenName": "Flag-Given",
        "nickName": "Flag-Nick",
        f"{ENTERPRISE}:costCenter": "Flag-Cost",
        f"{ENTERPRISE}:employeeNumber": "Flag-Employee",
    }
    _patch(bridge, uid, {"op": "replace", "value": flagged})
    expected["name"]["givenName"] = "Flag-Given"
    expected["nickName"] = "Flag-Nick"
    expected[ENTERPRISE]["costCenter"] = "Flag-Cost"
    expected[ENTERPRISE]["employeeNumber"] = "Flag-Employee"
    _assert_reads_back(bridge, uid, expected)

    # 5. Value-filter paths into multi-valued attributes (emails[type eq "work"].value, ...).
    _patch_through_value_filters(bridge, uid, schemas, values, expected)
    _assert_reads_back(bridge, uid, expected)

    # 6. remove, one path at a time: each attribute reads back absent.
    for attribute in schemas[USER]:
        if attribute["name"] in ("userName", "emails"):
            continue  # required / the login of a non-email userName
        _patch(bridge, uid, {"op": "remove", "path": attribute["name"]})
        assert attribute["name"] not in bridge.get(f"/Users/{uid}").get_json()
    for attribute in schemas[ENTERPRISE]:
        _patch(bridge, uid, {"op": "remove", "path": f"{ENTERPRISE}:{attribute['name']}"})
        read = bridge.get(f"/Users/{uid}").get_json()
        assert attribute["name"] not in read.get(ENTERPRISE, {})


def test_an_edit_made_in_genesys_directly_shows_through(
    bridge: Bridge, setup: tuple[dict[str, list[dict[str, Any]]], Values]
) -> None:
    """The IdP's form is answered only while Genesys still agrees with it: a title changed in
    Genesys must not be hidden behind what the IdP wrote."""
    schemas, values = setup
    body = values.resource(schemas, "drift")
    uid = bridge.post("/Users", json=body).get_json()["id"]
    directory = bridge.app.extensions["scim_bridge"].extra["scim"].directory_service
    directory.gateway.update_user(uid, UserFields(title="Changed in Genesys"))
    read = bridge.get(f"/Users/{uid}").get_json()
    assert read["title"] == "Changed in Genesys"
    assert read["nickName"] == body["nickName"]  # kept by the bridge
    assert read["emails"] == body["emails"]  # Genesys still agrees: as written
    assert read["name"] == body["name"]
