"""SDK models in, frozen dataclasses out; dataclasses in, JSON request bodies out.

The SDK is untyped, so every read of a model goes through the small typed accessors below: no
``Any`` leaves this module. Request bodies are plain dicts (the SDK sends a dict unchanged,
``api_client.py:599-600``), which keeps exactly the keys we mean on the wire: a PATCH carries
only the fields being changed (genesys-api.md 2.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from scim_bridge.genesys.types import (
    ContactInfo,
    Criterion,
    Division,
    GenesysUser,
    Group,
    HistoryJob,
    MediaType,
    Proficiency,
    QueueMembership,
    RoleGrant,
    UserFields,
    UserState,
)

_STATES: frozenset[str] = frozenset({"active", "inactive", "deleted"})
_MEDIA: frozenset[str] = frozenset({"EMAIL", "PHONE", "SMS"})
_MEDIA_LOWER: frozenset[str] = frozenset(m.lower() for m in _MEDIA)
# Contact.type's values (models/contact.py), lower-cased as the SDK compares them.
_CONTACT_TYPES: frozenset[str] = frozenset(
    {"primary", "work", "work2", "work3", "work4", "home", "mobile", "main", "other"}
)
# UserConversationSummary media (models/user_conversation_summary.py).
_SUMMARY_MEDIA = ("call", "callback", "email", "message", "chat", "social_expression", "video")


# (model class, JSON name) -> the model's attribute (its ``attribute_map``, set per instance).
_ATTRIBUTES: dict[tuple[type, str], str] = {}


def _field(obj: Any, name: str) -> Any:
    """``name`` of an answer as Genesys sent it: a JSON object (a raw read, ``sdk.call_json``), or
    the SDK model the same JSON was deserialised into, read by the JSON name (or by the
    attribute's own name, which the model mappings below use)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    key = (type(obj), name)
    attr = _ATTRIBUTES.get(key)
    if attr is None:
        attribute_map: dict[str, str] = getattr(obj, "attribute_map", None) or {}
        attr = next((a for a, json_name in attribute_map.items() if json_name == name), name)
        _ATTRIBUTES[key] = attr
    return getattr(obj, attr, None)


def _str(obj: Any, attr: str) -> str | None:
    value = _field(obj, attr)
    return value if isinstance(value, str) else None


def _int(obj: Any, attr: str, default: int = 0) -> int:
    value = _field(obj, attr)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _list(obj: Any, attr: str) -> list[Any]:
    value = _field(obj, attr)
    return value if isinstance(value, list) else []


def _enum(value: str | None, allowed: frozenset[str]) -> str | None:
    """The SDK's reading of an enum (its models' setters): a value it does not know, in any
    case, becomes ``outdated_sdk_version`` (genesys-api.md 1.5); the same for a raw answer."""
    if value is None or value.lower() in allowed:
        return value
    return "outdated_sdk_version"


# --- users -------------------------------------------------------------------------------------
# One mapping for a user, in Genesys's JSON names (genesys-api.md 2.1), whether the answer came as
# JSON (the SCIM reads: ``sdk.call_json``, no model built) or as an SDK ``User`` (the writes).
def _contact(entry: Any) -> ContactInfo | None:
    address = _str(entry, "address")
    media = _enum(_str(entry, "mediaType"), _MEDIA_LOWER)
    if address is None or media not in _MEDIA:
        return None
    return ContactInfo(
        address=address,
        media_type=cast(MediaType, media),
        type=_enum(_str(entry, "type"), _CONTACT_TYPES) or "PRIMARY",
        extension=_str(entry, "extension"),
        display=_str(entry, "display"),
        country_code=_str(entry, "countryCode"),
    )


def _contacts(entries: Iterable[Any]) -> tuple[ContactInfo, ...]:
    return tuple(c for c in (_contact(m) for m in entries) if c is not None)


def user(answer: Any) -> GenesysUser:
    """A ``User`` as Genesys answered it: its JSON, or the SDK model of it."""
    state = _str(answer, "state")
    employer = _field(answer, "employerInfo")
    return GenesysUser(
        id=_str(answer, "id") or "",
        name=_str(answer, "name") or "",
        email=_str(answer, "email"),
        # Unknown enum values arrive as "outdated_sdk_version" (genesys-api.md 1.5); a user we
        # cannot place is treated as one that cannot log in.
        state=cast(UserState, state if state in _STATES else "inactive"),
        version=_int(answer, "version"),
        username=_str(answer, "username"),
        department=_str(answer, "department"),
        title=_str(answer, "title"),
        manager_id=_str(_field(answer, "manager"), "id"),
        division_id=_str(_field(answer, "division"), "id"),
        preferred_name=_str(answer, "preferredName"),
        employee_id=_str(employer, "employeeId"),
        date_hire=_str(employer, "dateHire"),
        primary_contact_info=_contacts(_list(answer, "primaryContactInfo")),
        addresses=_contacts(_list(answer, "addresses")),
    )


def users(models: Iterable[Any]) -> tuple[GenesysUser, ...]:
    return tuple(user(m) for m in models)


def conversation_counts(model: Any) -> tuple[int, int] | None:
    """(active, acw) summed over every medium, contact-center and enterprise
    (``expand=conversationSummary``, genesys-api.md 2.1); None when the summary is absent."""
    summary = getattr(model, "conversation_summary", None)
    if summary is None:
        return None
    active = acw = 0
    for medium in _SUMMARY_MEDIA:
        media_summary = getattr(summary, medium, None)
        for scope in ("contact_center", "enterprise"):
            detail = getattr(media_summary, scope, None)
            active += _int(detail, "active")
            acw += _int(detail, "acw")
    return active, acw


def _contact_body(contact: ContactInfo) -> dict[str, str]:
    body = {"address": contact.address, "mediaType": contact.media_type, "type": contact.type}
    if contact.extension is not None:
        body["extension"] = contact.extension
    if contact.display is not None:
        body["display"] = contact.display
    if contact.country_code is not None:
        body["countryCode"] = contact.country_code
    return body


def create_user_body(fields: UserFields, state: UserState) -> dict[str, Any]:
    """``CreateUser`` (genesys-api.md 2.5): name, email, department, title, addresses,
    divisionId, state. The rest (manager, preferredName, employerInfo) is a PATCH afterwards."""
    body: dict[str, Any] = {"name": fields.name, "email": fields.email, "state": state}
    if fields.department is not None:
        body["department"] = fields.department
    if fields.title is not None:
        body["title"] = fields.title
    if fields.division_id:
        body["divisionId"] = fields.division_id
    if fields.addresses is not None:
        body["addresses"] = [_contact_body(c) for c in fields.addresses]
    return body


def update_user_body(fields: UserFields, version: int) -> dict[str, Any]:
    """``UpdateUser`` (genesys-api.md 2.3): the fields that are not None, and the version.

    ``division_id`` is not part of ``UpdateUser`` (models/update_user.py:83-104): a division is
    chosen at create time only, so it is not sent here.
    """
    body: dict[str, Any] = {"version": version}
    for key, value in (
        ("name", fields.name),
        ("email", fields.email),
        ("department", fields.department),
        ("title", fields.title),
        ("manager", fields.manager_id),  # a string id; "" clears it
        ("preferredName", fields.preferred_name),
    ):
        if value is not None:
            body[key] = value
    employer: dict[str, str] = {}
    if fields.employee_id is not None:
        employer["employeeId"] = fields.employee_id
    if fields.date_hire is not None:
        employer["dateHire"] = fields.date_hire
    if employer:
        body["employerInfo"] = employer
    if fields.addresses is not None:
        body["addresses"] = [_contact_body(c) for c in fields.addresses]
    return body


def has_update(fields: UserFields) -> bool:
    return len(update_user_body(fields, 0)) > 1


def post_create_fields(fields: UserFields) -> UserFields:
    """The part of ``fields`` that ``CreateUser`` cannot carry."""
    return UserFields(
        manager_id=fields.manager_id or None,
        preferred_name=fields.preferred_name,
        employee_id=fields.employee_id,
        date_hire=fields.date_hire,
    )


# --- search ------------------------------------------------------------------------------------
def criterion_body(criterion: Criterion) -> dict[str, Any]:
    body: dict[str, Any] = {"type": criterion.type}
    if criterion.fields:
        body["fields"] = list(criterion.fields)
    if criterion.value is not None:
        body["value"] = criterion.value
    if criterion.values:
        body["values"] = list(criterion.values)
    if criterion.operator is not None:
        body["operator"] = criterion.operator
    if criterion.group:
        body["group"] = [criterion_body(c) for c in criterion.group]
    return body


def mentions_field(criteria: Sequence[Criterion], field: str) -> bool:
    return any(field in c.fields or mentions_field(c.group, field) for c in criteria)


# --- routing -----------------------------------------------------------------------------------
def queue_membership(model: Any, *, joined_default: bool) -> QueueMembership | None:
    queue_id = _str(model, "id")
    if queue_id is None:
        return None
    joined = getattr(model, "joined", None)
    return QueueMembership(
        queue_id=queue_id,
        queue_name=_str(model, "name") or "",
        joined=joined if isinstance(joined, bool) else joined_default,
    )


# --- groups ------------------------------------------------------------------------------------
def group(model: Any) -> Group:
    return Group(
        id=_str(model, "id") or "",
        name=_str(model, "name") or "",
        version=_int(model, "version"),
        state=_str(model, "state") or "active",
        description=_str(model, "description"),
        member_count=_int(model, "member_count"),
        type=_str(model, "type") or "official",
        visibility=_str(model, "visibility") or "public",
    )


def groups(models: Iterable[Any]) -> tuple[Group, ...]:
    return tuple(group(m) for m in models)


# --- listings ----------------------------------------------------------------------------------
def listing_items(model: Any, attr: str = "entities") -> list[Any]:
    return _list(model, attr)


def listing_total(model: Any, default: int) -> int:
    return _int(model, "total", default)


def listing_page_count(model: Any) -> int | None:
    value = _int(model, "pageCount", -1)
    return value if value >= 0 else None


def user_ids(models: Iterable[Any]) -> tuple[str, ...]:
    return tuple(i for i in (_str(m, "id") for m in models) if i)


# --- analytics ---------------------------------------------------------------------------------
def conversation_participants(response: Any) -> list[tuple[str, frozenset[str]]]:
    """(conversationId, participant userIds) for each conversation of a details-query page;
    empty when ``conversations`` is absent (past the last page, genesys-api.md 4.1)."""
    result = []
    for conversation in _list(response, "conversations"):
        conversation_id = _str(conversation, "conversation_id")
        if conversation_id is None:
            continue
        participants = frozenset(
            uid for uid in (_str(p, "user_id") for p in _list(conversation, "participants")) if uid
        )
        result.append((conversation_id, participants))
    return result


def details_page_shape(response: Any) -> tuple[int, int | None]:
    """(rows on the page, ``totalHits`` or None when absent) of a details-query page."""
    hits = getattr(response, "total_hits", None)
    total = hits if isinstance(hits, int) and not isinstance(hits, bool) else None
    return len(_list(response, "conversations")), total


def _datetime(obj: Any, attr: str) -> datetime | None:
    value = getattr(obj, attr, None)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def job_id(model: Any) -> str | None:
    """``AsyncQueryResponse.jobId``."""
    return _str(model, "job_id")


def history_job(model: Any, job_id: str) -> HistoryJob:
    """``AsyncQueryStatus`` -> ``HistoryJob`` (genesys-api.md 4.3)."""
    return HistoryJob(
        job_id=job_id,
        state=_str(model, "state") or "outdated_sdk_version",
        error_message=_str(model, "error_message"),
        submitted_at=_datetime(model, "submission_date"),
        completed_at=_datetime(model, "completion_date"),
        expires_at=_datetime(model, "expiration_date"),
    )


def job_page(response: Any) -> tuple[str | None, datetime | None]:
    """(the next ``cursor`` or None on the last page, ``dataAvailabilityDate``) of a results page
    (``AnalyticsConversationAsyncQueryResponse``)."""
    return _str(response, "cursor") or None, _datetime(response, "data_availability_date")


def data_availability(model: Any) -> datetime | None:
    """``DataAvailabilityResponse.dataAvailabilityDate``."""
    return _datetime(model, "data_availability_date")


# --- the footprint (issue 12) ------------------------------------------------------------------
def grants(model: Any) -> tuple[RoleGrant, ...]:
    """``AuthzSubject.grants`` as RoleGrants, sorted; grants without a role or division id
    (which a restore could not use) are left out."""
    found: set[RoleGrant] = set()
    for grant in _list(model, "grants"):
        role, division = getattr(grant, "role", None), getattr(grant, "division", None)
        role_id, division_id = _str(role, "id"), _str(division, "id")
        if role_id is None or division_id is None:
            continue
        found.add(
            RoleGrant(
                role_id=role_id,
                division_id=division_id,
                subject_id=_str(grant, "subject_id") or "",
                role_name=_str(role, "name"),
                division_name=_str(division, "name"),
            )
        )
    return tuple(sorted(found))


def proficiencies(models: Iterable[Any]) -> tuple[Proficiency, ...]:
    """``UserRoutingSkill`` / ``UserRoutingLanguage`` entries, sorted by id."""
    found: dict[str, Proficiency] = {}
    for model in models:
        entity_id = _str(model, "id")
        value = getattr(model, "proficiency", None)
        if entity_id is None:
            continue
        level = (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
        )
        found[entity_id] = Proficiency(entity_id, level, _str(model, "name"))
    return tuple(sorted(found.values()))


def expanded(model: Any, attr: str) -> list[Any] | None:
    """An expand's list, or None when Genesys left it out (expands are best effort, PYDOCS
    get_user): absent is "unknown", never "none"."""
    value = getattr(model, attr, None)
    return value if isinstance(value, list) else None


def grant_pairs(chosen: Iterable[RoleGrant]) -> list[dict[str, str]]:
    """``RoleDivisionPair`` bodies, one per distinct (role, division)."""
    pairs = dict.fromkeys((g.role_id, g.division_id) for g in chosen)
    return [{"roleId": role, "divisionId": division} for role, division in pairs]


def proficiency_body(chosen: Iterable[Proficiency]) -> list[dict[str, Any]]:
    """``UserRoutingSkillPost`` / ``UserRoutingLanguagePost`` bodies."""
    return [{"id": p.id, "proficiency": p.proficiency} for p in chosen]


def division(model: Any) -> Division:
    home = getattr(model, "home_division", None)
    return Division(id=_str(model, "id") or "", name=_str(model, "name") or "", home=home is True)
