"""Every tolerance for what Okta and Microsoft Entra ID send that RFC 7644 does not say.

Quarantined here (STYLE.md 7) so that ``patch.py``, ``schemas.py`` and the routes stay RFC-shaped.
Each rule names the IdP and the source (keys as in shared/idp-behaviour.md) and has a replay test
in ``tests/scim/test_quirks.py`` with a payload file named after its source.

Request bodies (POST/PUT), ``normalise_resource``:

* Okta echoes ``id``, ``meta`` (even non-ISO dates) and ``groups: []`` in the PUT it builds from
  our GET (O-OLD); Entra sends ``meta: {resourceType}`` on create (E-TUT). Dropped.
* Okta always sends a placeholder ``password`` (O-20). Dropped here, first, so it is never stored,
  forwarded or logged.
* Entra's reference tests post ``"active": "True"`` (E-REF). String booleans become booleans.
* Entra's older examples carry explicit ``null``s (E-TUT Example 2, E-KNOWN). Dropped (absent).
* Entra may send ``manager`` as a bare id string (directory-scimple#1242). Becomes ``{"value"}``.

PATCH bodies, ``normalise_patch``:

* Entra (without ``aadOptscim062020``) capitalises ``op``: ``Add``/``Replace``/``Remove`` (E-KI, E-TUT).
* Entra sends ``"value": "False"`` for ``active`` (E-KI). String booleans become booleans.
* Entra with ``aadOptscim062020`` sends one path-less replace whose keys are dotted
  (``name.givenName``) or URN-qualified (``urn:...:enterprise:2.0:User:employeeNumber``) (E-KI).
  Each such key becomes its own operation with that path.
* Entra sends the manager as a bare string, on the URN path or as ``manager`` (SCIM-SDK#541,
  E-TUT Example 5 with a one-element list); "Replace" with an empty value removes it (E-LA);
  ``remove`` with ``manager[value eq "x"]`` (scim-patch#453) or with a value removes it.
* Entra (legacy) removes group members with ``{"op":"Remove","path":"members","value":[{"value":
  "u1"}]}`` (E-KI, E-TUT). A literal RFC reading removes *every* member; here it removes only the
  listed ones (azure-docs#30826, SCIM-SDK#149).
* Okta's group rename carries the group's own ``id`` inside the path-less value (O-OLD): dropped
  when it is the resource's id (a different id is still a ``mutability`` error).
* Entra's validator replaces attributes with ``""`` and then ``null`` to clear them (E-LA
  SCIM_Null_Update_Test): a replace or add of an empty value on a path is a remove.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from scim_bridge.scim import definitions

_ENTERPRISE = definitions.ENTERPRISE_SCHEMA
_MANAGER_PATHS = frozenset({"manager", f"{_ENTERPRISE}:manager".lower()})
_BOOLEAN_ATTRIBUTES = frozenset({"active", "primary"})
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def _bool(value: Any) -> Any:
    """``"True"``/``"False"`` in any case -> bool (Entra, E-KI / E-REF); anything else as is."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _manager(value: Any) -> Any:
    """A bare manager id (Entra) or a one-element list (E-TUT Example 5) -> ``{"value": id}``."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str | int) and not isinstance(value, bool):
        return {"value": str(value)}
    return value


def _manager_empty(value: Any) -> bool:
    if value in _EMPTY:
        return True
    if isinstance(value, Mapping):
        inner = next((v for k, v in value.items() if k.lower() == "value"), None)
        return inner in _EMPTY
    return isinstance(value, list) and all(_manager_empty(v) for v in value)


# --- POST / PUT ------------------------------------------------------------------------------


def normalise_resource(body: Any, *, resource_id: str | None = None) -> Any:
    """A POST or PUT body with the IdP quirks above smoothed out (a new dict; input untouched)."""
    if not isinstance(body, Mapping):
        return body
    out: dict[str, Any] = {}
    for key, raw in body.items():
        lowered = key.lower()
        value = raw
        if lowered in ("password", "meta", "groups"):
            continue  # Okta placeholder password / echoed meta and groups (O-20, O-OLD)
        if lowered == "id":
            if resource_id is not None and value != resource_id:
                out[key] = value  # a different id stays, for the mutability check
            continue
        if value is None:
            continue  # Entra explicit nulls (E-TUT Example 2)
        out[key] = copy.deepcopy(_normalise_attribute(lowered, value))
    return out


def _normalise_attribute(lowered: str, value: Any) -> Any:
    """One attribute of a POST or PUT body: string booleans, nulls in multi-valued elements,
    and the enterprise extension's manager forms."""
    if lowered in _BOOLEAN_ATTRIBUTES:
        return _bool(value)
    if lowered in ("emails", "phonenumbers") and isinstance(value, list):
        return [_drop_nulls(_bools(v)) for v in value]
    if lowered == _ENTERPRISE.lower() and isinstance(value, Mapping):
        enterprise = _drop_nulls(dict(value))
        for k in list(enterprise):
            if k.lower() == "manager":
                manager = _manager(enterprise[k])
                if _manager_empty(manager):
                    del enterprise[k]
                else:
                    enterprise[k] = manager
        return enterprise
    return value


def _bools(item: Any) -> Any:
    if isinstance(item, Mapping):
        return {k: _bool(v) if k.lower() in _BOOLEAN_ATTRIBUTES else v for k, v in item.items()}
    return item


def _drop_nulls(item: Any) -> Any:
    if isinstance(item, Mapping):
        return {k: v for k, v in item.items() if v is not None}
    return item


# --- PATCH -----------------------------------------------------------------------------------


def normalise_patch(body: Any, *, resource_id: str | None = None) -> Any:
    """A PatchOp body with the IdP quirks above smoothed out (a new dict; input untouched)."""
    if not isinstance(body, Mapping):
        return body
    operations = body.get("Operations")
    if not isinstance(operations, list):
        return body
    out: list[Any] = []
    for raw in operations:
        if not isinstance(raw, Mapping):
            out.append(raw)
            continue
        operation = dict(raw)
        if isinstance(operation.get("op"), str):
            operation["op"] = operation["op"].strip().lower()  # Entra "Replace" (E-KI)
        out.extend(_normalise_operation(operation, resource_id))
    result = dict(body)
    result["Operations"] = out
    return result


def _normalise_operation(
    operation: dict[str, Any], resource_id: str | None
) -> list[dict[str, Any]]:
    op = operation.get("op")
    path = operation.get("path")
    value = operation.get("value")
    if op not in ("add", "replace", "remove"):
        return [operation]
    if path is None:
        if op == "remove" or not isinstance(value, Mapping):
            return [operation]
        return _split_pathless(op, value, resource_id)
    if not isinstance(path, str):
        return [operation]
    return _normalise_path_operation(operation, op, path)


def _normalise_path_operation(
    operation: dict[str, Any], op: str, path: str
) -> list[dict[str, Any]]:
    lowered = path.strip().lower()
    # active / primary as strings (Entra "False").
    if (
        lowered.rsplit(":", 1)[-1].rsplit(".", 1)[-1] in _BOOLEAN_ATTRIBUTES
        and "value" in operation
    ):
        operation["value"] = _bool(operation["value"])
    value = operation.get("value")
    # Manager (Entra): bare string, "manager" path, empty value, value-filtered remove.
    if lowered in _MANAGER_PATHS or lowered.startswith(
        ("manager[", f"{_ENTERPRISE}:manager[".lower())
    ):
        manager_path = f"{_ENTERPRISE}:manager"
        if op == "remove" or _manager_empty(value):
            return [{"op": "remove", "path": manager_path}]
        return [{"op": op, "path": manager_path, "value": _manager(value)}]
    # Entra's legacy member removal with a value list removes only those members (E-KI).
    if op == "remove" and lowered == "members" and isinstance(value, list) and value:
        return _member_removals(value)
    # An empty value clears the attribute (Entra validator, E-LA).
    if op in ("add", "replace") and "value" in operation and value in (None, ""):
        return [{"op": "remove", "path": path}]
    return [operation]


def _member_removals(members: list[Any]) -> list[dict[str, Any]]:
    removals = []
    for member in members:
        member_id = member.get("value") if isinstance(member, Mapping) else member
        if isinstance(member_id, str) and member_id and '"' not in member_id:
            removals.append({"op": "remove", "path": f'members[value eq "{member_id}"]'})
    return removals


def _split_pathless(
    op: str, value: Mapping[str, Any], resource_id: str | None
) -> list[dict[str, Any]]:
    """A path-less add/replace: dotted and URN-qualified keys become operations with that path
    (Entra aadOptscim062020, E-KI); Okta's echoed own ``id`` is dropped (O-OLD)."""
    plain: dict[str, Any] = {}
    extra: list[dict[str, Any]] = []
    for key, raw in value.items():
        lowered = key.lower()
        item = raw
        if _echoed(lowered, item, resource_id):
            continue
        if "." in key or (":" in key and definitions.find_schema_urn(key) is None):
            extra.extend(_normalise_operation({"op": op, "path": key, "value": item}, resource_id))
            continue
        if lowered in _BOOLEAN_ATTRIBUTES:
            item = _bool(item)
        if lowered == _ENTERPRISE.lower() and isinstance(item, Mapping):
            for k, v in item.items():
                extra.extend(
                    _normalise_operation(
                        {"op": op, "path": f"{_ENTERPRISE}:{k}", "value": v}, resource_id
                    )
                )
            continue
        if lowered == "manager":
            extra.extend(_normalise_operation({"op": op, "path": key, "value": item}, resource_id))
            continue
        if item is None or item == "":
            extra.append({"op": "remove", "path": key})
            continue
        plain[key] = item
    operations: list[dict[str, Any]] = []
    if plain:
        operations.append({"op": op, "value": plain})
    return operations + extra


def _echoed(lowered: str, item: Any, resource_id: str | None) -> bool:
    """Okta's group rename {"id": <groupId>, "displayName": ...}, and an echoed ``meta``."""
    return lowered == "meta" or (
        lowered == "id" and resource_id is not None and item == resource_id
    )
