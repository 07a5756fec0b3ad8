"""SCIM User / Group <-> Genesys user / group: the one place the mapping lives.

``docs/scim-mapping.md`` is this module as a table; change both together.

| SCIM                                  | Genesys                                         |
|---------------------------------------|-------------------------------------------------|
| id                                    | user id                                         |
| userName                              | email when it is an email (case-insensitive);   |
|                                       | else kept by the bridge, work email = login     |
| displayName                           | name                                            |
| title                                 | title                                           |
| emails[type eq "work"].value          | the login for a non-email userName; else an     |
|                                       | EMAIL/WORK address when it differs from it      |
| phoneNumbers[type eq T].value         | PHONE addresses of type T (work, work2-4, home, |
|                                       | mobile, other, main)                            |
| active                                | state: active <-> true, inactive <-> false      |
| enterprise department                 | department                                      |
| enterprise employeeNumber             | employerInfo.employeeId                         |
| enterprise manager.value              | manager (a user id)                             |
| everything else the catalogue lists   | kept by the bridge as written (``attributes``)  |
| externalId                            | kept by the bridge                              |
| meta.version                          | W/"<version>"                                   |
| meta.created / lastModified           | kept by the bridge (absent if never written)    |

What the IdP wrote is answered while Genesys still agrees with it (``_overlay``); a value changed in
Genesys directly is answered from Genesys. For users the bridge never wrote, givenName/familyName
come from Genesys's name (``split_name``).

A deleted Genesys user is not a SCIM resource (404). Nothing here does I/O.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from scim_bridge.directory.errors import Rejected
from scim_bridge.directory.records import LocalFields, LocalRecord
from scim_bridge.genesys.types import ContactInfo, GenesysUser, Group, UserFields

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
BRIDGE_SCHEMA = "urn:ietf:params:scim:schemas:extension:scim-bridge:2.0:User"
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


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


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


def is_email(text: str | None) -> bool:
    """Shaped like an email address (what Genesys accepts as a login)."""
    return bool(text) and _EMAIL.match(text or "") is not None


def split_name(name: str) -> tuple[str, str]:
    """(givenName, familyName) from Genesys's one ``name``, for users the bridge did not write
    (Okta's import needs both, issue 13). ``"Family, Given"`` splits at the comma; otherwise the
    last word is the family name and the words before it the given name; a one-word name is both.
    """
    text = " ".join(name.split())
    if "," in text:
        family, _, given = text.partition(",")
        if family.strip() and given.strip():
            return given.strip(), family.strip()
        text = (family or given).strip()
    words = text.split(" ")
    if len(words) == 1:
        return words[0], words[0]
    return " ".join(words[:-1]), words[-1]


def _from_genesys(user: GenesysUser, user_location: str) -> dict[str, Any]:
    """What Genesys alone says about the user, in SCIM form (no bridge record)."""
    resource: dict[str, Any] = {"userName": user.email or user.username or ""}
    if user.name:
        resource["displayName"] = user.name
    if user.title:
        resource["title"] = user.title
    work_email = _genesys_work_email(user)
    if work_email:
        resource["emails"] = [{"value": work_email, "type": "work"}]
    phones = [
        {"value": a.address, "type": a.type.lower()}
        for a in user.addresses
        if a.media_type == "PHONE" and a.address
    ]
    if phones:
        resource["phoneNumbers"] = phones
    enterprise: dict[str, Any] = {}
    if user.department:
        enterprise["department"] = user.department
    if user.employee_id:
        enterprise["employeeNumber"] = user.employee_id
    if user.manager_id:
        enterprise["manager"] = {"value": user.manager_id}
    if enterprise:
        resource[ENTERPRISE_SCHEMA] = enterprise
    return resource


def _genesys_work_email(user: GenesysUser) -> str | None:
    return next(
        (a.address for a in user.addresses if a.media_type == "EMAIL" and a.type == "WORK"),
        user.email,
    )


def _phones(contacts: Sequence[ContactInfo]) -> frozenset[tuple[str, str]]:
    return frozenset((c.type, c.address) for c in contacts if c.media_type == "PHONE" and c.address)


def _held(user: GenesysUser) -> dict[str, Any]:
    """The Genesys values each SCIM attribute is checked against (see ``_HELD_BY_GENESYS``)."""
    return {
        "name": user.name or "",
        "title": user.title or "",
        "department": user.department or "",
        "employee_id": user.employee_id or "",
        "manager_id": user.manager_id or "",
        "work_email": (_genesys_work_email(user) or "").lower(),
        "phones": _phones(user.addresses),
    }


def _written(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The same values as ``_held``, as writing ``resource`` to Genesys would leave them."""
    fields = user_fields(resource, strict=False)
    login = (fields.email or "").lower()
    return {
        "name": fields.name or "",
        "title": fields.title or "",
        "department": fields.department or "",
        "employee_id": fields.employee_id or "",
        "manager_id": fields.manager_id or "",
        "work_email": (_work_email(resource) or login).lower(),
        "phones": _phones(fields.addresses or ()),
    }


# SCIM attributes Genesys holds -> the values that must agree for the IdP's own form to be shown.
_HELD_BY_GENESYS: Mapping[str, tuple[str, ...]] = {
    "displayName": ("name",),
    "title": ("title",),
    "emails": ("work_email",),
    "phoneNumbers": ("phones",),
}
_ENTERPRISE_HELD_BY_GENESYS: Mapping[str, tuple[str, ...]] = {
    "department": ("department",),
    "employeeNumber": ("employee_id",),
    "manager": ("manager_id",),
}


def _overlay(
    user: GenesysUser, local: LocalRecord, stored: Mapping[str, Any], derived: Mapping[str, Any]
) -> dict[str, Any]:
    """The IdP's own form where Genesys still agrees with it; Genesys's where it changed since
    (someone edited the user in Genesys directly: that must show, not be hidden)."""
    resource: dict[str, Any] = copy.deepcopy(dict(stored))
    written_form = {**stored, "userName": local.user_name or user.email or ""}
    held, written = _held(user), _written(written_form)

    def settle(
        target: dict[str, Any], source: Mapping[str, Any], name: str, keys: Sequence[str]
    ) -> None:
        if all(held[k] == written[k] for k in keys):
            return
        if name in source:
            target[name] = copy.deepcopy(source[name])
        else:
            target.pop(name, None)

    for name, keys in _HELD_BY_GENESYS.items():
        settle(resource, derived, name, keys)
    enterprise = dict(resource.get(ENTERPRISE_SCHEMA) or {})
    derived_enterprise = derived.get(ENTERPRISE_SCHEMA) or {}
    for name, keys in _ENTERPRISE_HELD_BY_GENESYS.items():
        settle(enterprise, derived_enterprise, name, keys)
    if enterprise:
        resource[ENTERPRISE_SCHEMA] = enterprise
    else:
        resource.pop(ENTERPRISE_SCHEMA, None)
    user_name_ = local.user_name
    if not user_name_ or (
        is_email(user_name_) and user_name_.lower() != (user.email or "").lower()
    ):
        user_name_ = derived["userName"]  # an email userName follows a login changed in Genesys
    resource["userName"] = user_name_
    return resource


def _legacy(
    user: GenesysUser, local: LocalRecord | None, derived: dict[str, Any]
) -> dict[str, Any]:
    """A user the bridge never wrote (or wrote before it kept attributes): Genesys's form, the
    name parts from the old columns, and givenName/familyName derived from the Genesys name."""
    resource = dict(derived)
    unset = local.unset_attributes if local else frozenset()
    for name in unset & {"displayName", "emails"}:
        resource.pop(name, None)
    parts: dict[str, str] = {}
    formatted = (local.formatted_name if local else None) or user.name
    if formatted:
        parts["formatted"] = formatted
    given, family = split_name(user.name) if user.name and user.name.strip() else (None, None)
    given = (local.given_name if local else None) or given
    family = (local.family_name if local else None) or family
    if given:
        parts["givenName"] = given
    if family:
        parts["familyName"] = family
    if parts:
        resource["name"] = parts
    return resource


def user_to_scim(
    user: GenesysUser, local: LocalRecord | None, *, location: str, user_location: str
) -> dict[str, Any]:
    """The SCIM representation. ``user_location`` is the base for other users' ``$ref``."""
    derived = _from_genesys(user, user_location)
    if local is not None and local.attributes is not None:
        body = _overlay(user, local, local.attributes, derived)
    else:
        body = _legacy(user, local, derived)
    resource: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": user.id}
    if local and local.external_id:
        resource["externalId"] = local.external_id
    resource.update(body)
    resource["active"] = user.state == "active"
    enterprise = resource.get(ENTERPRISE_SCHEMA)
    if isinstance(enterprise, dict):
        resource["schemas"].append(ENTERPRISE_SCHEMA)
        manager = enterprise.get("manager")
        if isinstance(manager, dict) and manager.get("value"):
            manager["$ref"] = f"{user_location}/{manager['value']}"
    meta: dict[str, Any] = {"resourceType": "User", "location": location}
    if local is not None:
        if local.created_at:  # only what the bridge created (RFC 7643 §3.1)
            meta["created"] = local.created_at
        meta["lastModified"] = local.last_modified_at
    meta["version"] = etag(user.version)
    resource["meta"] = meta
    return resource


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


def _ranked_emails(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # Work first, then primary; among equals the last given wins (an "add" appends the new value
    # after the one shown before).
    emails = [e for e in _entries(resource, "emails") if _text(_get(e, "value"))][::-1]
    return sorted(
        emails,
        key=lambda e: (
            str(_get(e, "type") or "").lower() != "work",
            _get(e, "primary") is not True,
        ),
    )


def _work_email(resource: Mapping[str, Any]) -> str | None:
    """The email Genesys keeps as the work email: a work one, else a primary one, else any."""
    ranked = _ranked_emails(resource)
    return _text(_get(ranked[0], "value")) if ranked else None


def _usable_login_email(resource: Mapping[str, Any]) -> str | None:
    """A work (or primary) email shaped like an email: the login for a non-email userName."""
    for entry in _ranked_emails(resource):
        value = _text(_get(entry, "value"))
        work = str(_get(entry, "type") or "").lower() == "work"
        if (work or _get(entry, "primary") is True) and is_email(value):
            return value
    return None


NO_LOGIN_EMAIL = (
    "userName {user_name!r} is not an email address and the request carries no work or primary "
    'email to use as the Genesys Cloud login: map the user\'s email to emails[type eq "work"].value '
    "(Okta: the app user's email attribute; Entra: mail or userPrincipalName -> "
    'emails[type eq "work"].value), or map userName to an email.'
)


def login_email(resource: Mapping[str, Any], *, strict: bool = True) -> str | None:
    """The Genesys login: userName when it is an email, else the work (or primary) email.

    ``strict``: without either, raise ``Rejected`` naming the attribute to map (a 400 before any
    Genesys call); otherwise fall back to userName (a form the bridge rendered itself).
    """
    name = user_name(resource)
    if name and is_email(name):
        return name
    email = _usable_login_email(resource)
    if email:
        return email
    if strict and name:
        raise Rejected(NO_LOGIN_EMAIL.format(user_name=name))
    return name


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


def user_fields(
    resource: Mapping[str, Any], *, keep: Sequence[ContactInfo] = (), strict: bool = True
) -> UserFields:
    """Every mapped Genesys field the resource sets, for a create or a full replacement.

    Absent values are ``""`` (clear) except ``name`` and ``email``, which Genesys requires.
    ``keep``: contacts of the current user that SCIM does not show (kept on replacement).
    ``strict``: see ``login_email``.
    """
    login = login_email(resource, strict=strict)
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
    old = user_fields(before, keep=current.addresses, strict=False)
    new = user_fields(after, keep=current.addresses)
    changes = {
        f.name: getattr(new, f.name)
        for f in dataclasses.fields(new)
        if getattr(new, f.name) != getattr(old, f.name)
    }
    if not changes:
        return None
    return UserFields(**changes)


# Not kept in the JSON record: columns of their own, Genesys's state, never stored (password),
# read-only (RFC 7643 §3.1, §4.1 groups) or the bridge's own extension.
_NOT_KEPT = frozenset(
    {
        "schemas",
        "id",
        "meta",
        "externalid",
        "username",
        "active",
        "password",
        "groups",
        BRIDGE_SCHEMA.lower(),
    }
)


def kept_attributes(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The SCIM attributes the bridge keeps with its record (``LocalRecord.attributes``)."""
    kept = {
        k: copy.deepcopy(v)
        for k, v in resource.items()
        if k.lower() not in _NOT_KEPT and v is not None
    }
    enterprise = kept.get(ENTERPRISE_SCHEMA)
    if isinstance(enterprise, dict):
        manager = enterprise.get("manager")
        if isinstance(manager, dict):
            manager.pop("$ref", None)  # derived from the value when answering
            manager.pop("displayName", None)
    return kept


def local_fields(resource: Mapping[str, Any], *, pending: bool = False) -> LocalFields:
    return LocalFields(
        external_id=_text(_get(resource, "externalId")),
        user_name=user_name(resource),
        attributes=kept_attributes(resource),
        create_pending=pending,
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
        if local.created_at:  # only what the bridge created (RFC 7643 §3.1)
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
