"""SCIM User / Group <-> Genesys user / group: the one place the mapping lives.

``docs/scim-mapping.md`` is this module as a table; change both together.

| SCIM                                  | Genesys                                         |
|---------------------------------------|-------------------------------------------------|
| id                                    | user id                                         |
| userName                              | email (matched case-insensitively)              |
| displayName                           | name                                            |
| name.formatted / givenName / familyName | kept by the bridge; formatted defaults to name |
| title                                 | title                                           |
| emails[type eq "work"].value          | an EMAIL/WORK address when it differs from the  |
|                                       | login email, else the login email               |
| phoneNumbers[type eq T].value         | PHONE addresses of type T (work, work2-4, home, |
|                                       | mobile, other, main); other types are dropped   |
| active                                | state: active <-> true, inactive <-> false      |
| enterprise department                 | department                                      |
| enterprise employeeNumber             | employerInfo.employeeId                         |
| enterprise manager.value              | manager (a user id)                             |
| externalId                            | kept by the bridge                              |
| meta.version                          | W/"<version>"                                   |
| meta.created / lastModified           | kept by the bridge (absent if never written)    |

A deleted Genesys user is not a SCIM resource (404). Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from scim_bridge.directory.records import LocalFields, LocalRecord
from scim_bridge.genesys.types import ContactInfo, GenesysUser, Group, UserFields

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

# Filterable SCIM attributes (lower-cased; enterprise ones prefixed) -> Genesys search field.
USER_SEARCH_FIELDS: Mapping[str, str] = {
    "username": "email",
    "emails.value": "email",
    "emails": "email",
    "displayname": "name",
    "name.formatted": "name",
    "title": "title",
    "enterprise:department": "department",
    "enterprise:employeenumber": "employerInfo.employeeId",
    "enterprise:manager": "manager.id",
    "enterprise:manager.value": "manager.id",
}
GROUP_SEARCH_FIELDS: Mapping[str, str] = {"displayname": "name"}

# SCIM phone type <-> Genesys contact type (genesys-api.md 2.1, section 6 field mappings).
PHONE_TYPES: Mapping[str, str] = {
    "work": "WORK",
    "work2": "WORK2",
    "work3": "WORK3",
    "work4": "WORK4",
    "home": "HOME",
    "mobile": "MOBILE",
    "other": "OTHER",
    "main": "MAIN",
}


def etag(version: int) -> str:
    return f'W/"{version}"'


def _get(resource: Mapping[str, Any], key: str) -> Any:
    if key in resource:
        return resource[key]
    lowered = key.lower()
    return next((v for k, v in resource.items() if k.lower() == lowered), None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip() if not isinstance(value, dict | list) else None
    return text or None


def user_to_scim(
    user: GenesysUser, local: LocalRecord | None, *, location: str, user_location: str
) -> dict[str, Any]:
    """The SCIM representation. ``user_location`` is the base for other users' ``$ref``."""
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": user.id,
        "userName": user.email or user.username or "",
        "active": user.state == "active",
    }
    if local and local.external_id:
        resource["externalId"] = local.external_id
    unset = local.unset_attributes if local else frozenset()
    if user.name and "displayName" not in unset:
        resource["displayName"] = user.name
    name = _scim_name(user, local)
    if name:
        resource["name"] = name
    if user.title:
        resource["title"] = user.title
    resource.update(_contacts(user, unset))
    enterprise = _enterprise_scim(user, user_location)
    if enterprise:
        resource["schemas"].append(ENTERPRISE_SCHEMA)
        resource[ENTERPRISE_SCHEMA] = enterprise
    meta: dict[str, Any] = {"resourceType": "User", "location": location}
    if local is not None:
        meta["created"] = local.created_at
        meta["lastModified"] = local.last_modified_at
    meta["version"] = etag(user.version)
    resource["meta"] = meta
    return resource


def _scim_name(user: GenesysUser, local: LocalRecord | None) -> dict[str, str]:
    name: dict[str, str] = {}
    formatted = local.formatted_name if local else user.name
    if formatted:
        name["formatted"] = formatted
    if local and local.given_name:
        name["givenName"] = local.given_name
    if local and local.family_name:
        name["familyName"] = local.family_name
    return name


def _contacts(user: GenesysUser, unset: frozenset[str]) -> dict[str, Any]:
    """``emails`` (the work address) and ``phoneNumbers``, when there are any."""
    contacts: dict[str, Any] = {}
    work_email = next(
        (a.address for a in user.addresses if a.media_type == "EMAIL" and a.type == "WORK"),
        user.email,
    )
    if work_email and "emails" not in unset:
        contacts["emails"] = [{"value": work_email, "type": "work"}]
    phones = [
        {"value": a.address, "type": a.type.lower()}
        for a in user.addresses
        if a.media_type == "PHONE" and a.address
    ]
    if phones:
        contacts["phoneNumbers"] = phones
    return contacts


def _enterprise_scim(user: GenesysUser, user_location: str) -> dict[str, Any]:
    enterprise: dict[str, Any] = {}
    if user.department:
        enterprise["department"] = user.department
    if user.employee_id:
        enterprise["employeeNumber"] = user.employee_id
    if user.manager_id:
        enterprise["manager"] = {
            "value": user.manager_id,
            "$ref": f"{user_location}/{user.manager_id}",
        }
    return enterprise


def display_name(resource: Mapping[str, Any]) -> str | None:
    """Genesys's one name: displayName, else name.formatted, else given + family."""
    name = _get(resource, "name")
    name = name if isinstance(name, Mapping) else {}
    parts = [_text(_get(name, "givenName")), _text(_get(name, "familyName"))]
    return (
        _text(_get(resource, "displayName"))
        or _text(_get(name, "formatted"))
        or " ".join(p for p in parts if p)
        or None
    )


def _enterprise(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    value = _get(resource, ENTERPRISE_SCHEMA)
    return value if isinstance(value, Mapping) else {}


def _manager_id(resource: Mapping[str, Any]) -> str | None:
    manager = _get(_enterprise(resource), "manager")
    if isinstance(manager, Mapping):
        return _text(_get(manager, "value"))
    return None


def _entries(resource: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = _get(resource, key)
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def _work_email(resource: Mapping[str, Any]) -> str | None:
    # Genesys keeps one work email: a work (or primary) one, the last given winning (an
    # "add" appends the new value after the one shown before).
    emails = [e for e in _entries(resource, "emails") if _text(_get(e, "value"))][::-1]
    ranked = sorted(
        emails,
        key=lambda e: (
            str(_get(e, "type") or "").lower() != "work",
            _get(e, "primary") is not True,
        ),
    )
    return _text(_get(ranked[0], "value")) if ranked else None


def _addresses(resource: Mapping[str, Any], user_name: str | None) -> tuple[ContactInfo, ...]:
    out: list[ContactInfo] = []
    work = _work_email(resource)
    if work and (user_name is None or work.lower() != user_name.lower()):
        out.append(ContactInfo(address=work, media_type="EMAIL", type="WORK"))
    seen: set[tuple[str, str]] = set()
    for phone in _entries(resource, "phoneNumbers"):
        number = _text(_get(phone, "value"))
        kind = PHONE_TYPES.get(str(_get(phone, "type") or "work").lower())
        if number and kind and (kind, number) not in seen:
            seen.add((kind, number))
            out.append(ContactInfo(address=number, media_type="PHONE", type=kind))
    return tuple(out)


def _is_mapped(contact: ContactInfo) -> bool:
    """Contacts the SCIM form shows (and so a write replaces); others are kept as they are."""
    if contact.media_type == "PHONE":
        return True
    return contact.media_type == "EMAIL" and contact.type == "WORK"


def user_name(resource: Mapping[str, Any]) -> str | None:
    return _text(_get(resource, "userName"))


def user_fields(resource: Mapping[str, Any], *, keep: Sequence[ContactInfo] = ()) -> UserFields:
    """Every mapped Genesys field the resource sets, for a create or a full replacement.

    Absent values are ``""`` (clear) except ``name`` and ``email``, which Genesys requires.
    ``keep``: contacts of the current user that SCIM does not show (kept on replacement).
    """
    login = user_name(resource)
    enterprise = _enterprise(resource)
    addresses = tuple(c for c in keep if not _is_mapped(c)) + _addresses(resource, login)
    return UserFields(
        name=display_name(resource) or login,
        email=login,
        title=_text(_get(resource, "title")) or "",
        department=_text(_get(enterprise, "department")) or "",
        employee_id=_text(_get(enterprise, "employeeNumber")) or "",
        manager_id=_manager_id(resource) or "",
        addresses=addresses,
    )


def create_fields(resource: Mapping[str, Any]) -> UserFields:
    """``user_fields`` without the empty values (nothing to clear on a new user)."""
    full = user_fields(resource)
    empty = {f.name: None for f in dataclasses.fields(full) if getattr(full, f.name) in ("", ())}
    return dataclasses.replace(full, **empty)


def changed_fields(
    current: GenesysUser, before: Mapping[str, Any], after: Mapping[str, Any]
) -> UserFields | None:
    """The fields ``after`` changes relative to ``before`` (both SCIM forms), or None."""
    old = user_fields(before, keep=current.addresses)
    new = user_fields(after, keep=current.addresses)
    changes = {
        f.name: getattr(new, f.name)
        for f in dataclasses.fields(new)
        if getattr(new, f.name) != getattr(old, f.name)
    }
    if not changes:
        return None
    return UserFields(**changes)


def local_fields(resource: Mapping[str, Any]) -> LocalFields:
    name = _get(resource, "name")
    name = name if isinstance(name, Mapping) else {}
    return LocalFields(
        external_id=_text(_get(resource, "externalId")),
        given_name=_text(_get(name, "givenName")),
        family_name=_text(_get(name, "familyName")),
        formatted_name=_text(_get(name, "formatted")),
        unset_attributes=",".join(a for a in ("displayName", "emails") if not _get(resource, a))
        or None,
    )


def wanted_active(resource: Mapping[str, Any]) -> bool | None:
    value = _get(resource, "active")
    return value if isinstance(value, bool) else None


# --- groups ----------------------------------------------------------------------------------


def group_to_scim(
    group: Group,
    member_ids: Sequence[str] | None,
    local: LocalRecord | None,
    *,
    location: str,
    user_location: str,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": group.id,
        "displayName": group.name,
    }
    if local and local.external_id:
        resource["externalId"] = local.external_id
    if member_ids is not None:
        resource["members"] = [
            {"value": uid, "$ref": f"{user_location}/{uid}", "type": "User"} for uid in member_ids
        ]
    meta: dict[str, Any] = {"resourceType": "Group", "location": location}
    if local is not None:
        meta["created"] = local.created_at
        meta["lastModified"] = local.last_modified_at
    meta["version"] = etag(group.version)
    resource["meta"] = meta
    return resource


def group_member_ids(resource: Mapping[str, Any]) -> list[str]:
    ids: list[str] = []
    for member in _entries(resource, "members"):
        value = _text(_get(member, "value"))
        if value and value not in ids:
            ids.append(value)
    return ids


def group_name(resource: Mapping[str, Any]) -> str | None:
    return _text(_get(resource, "displayName"))
