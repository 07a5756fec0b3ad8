"""Authorization API: divisions, roles, a subject's grants, bulk grants, moving users between
divisions (PYDOCS ``AuthorizationApi.md``; docs/sandbox.md "The footprint").

Permissions are checked before the target is looked up, as everywhere in the sandbox, so that a
probe aimed at an id no org holds tells "allowed" (404) from "missing permission" (403).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.http import (
    bool_arg,
    choice_arg,
    empty,
    entity_listing,
    int_arg,
    json_list,
    json_object,
    json_response,
    multi,
    page_of,
    require,
    sandbox,
)
from scim_bridge.sandbox.model import iso
from scim_bridge.sandbox.org import Org

bp = Blueprint("authorization", __name__)

MAX_PAGE_SIZE = 500  # UNCONFIRMED for these listings; the same bound as GET /users
MAX_GRANTS = 100  # grants per bulk request: UNCONFIRMED, the stricter reading bounds it
SUBJECT_TYPES = ("PC_USER", "PC_GROUP", "PC_OAUTH_CLIENT")
# POST .../divisions/{d}/objects/{type}: PYDOCS says "Requires no permissions"; the real check is
# per object and UNCONFIRMED, so the sandbox asks for what editing a user asks (2.3).
MOVE_USER = ("admin", "directory:user:edit", "directory:organization:admin")
OBJECT_TYPES = ("QUEUE", "CAMPAIGN", "CONTACTLIST", "DNCLIST", "EMAILCAMPAIGN",
                "MESSAGINGCAMPAIGN", "MANAGEMENTUNIT", "BUSINESSUNIT", "FLOW", "FLOWMILESTONE",
                "FLOWOUTCOME", "USER", "CALLROUTE", "EMERGENCYGROUPS", "ROUTINGSCHEDULES",
                "ROUTINGSCHEDULEGROUPS", "DATATABLES", "TEAM", "WORKBIN", "WORKTYPE",
                "EXTENSIONPOOL", "SKILLGROUP", "SCRIPT", "LIBRARY")  # fmt: skip


@bp.get("/api/v2/authorization/divisions")
def list_divisions() -> Response:
    """``AuthzDivisionEntityListing``; ``id`` (repeated or ``a,b``), ``name`` filter. No
    permission (PYDOCS get_authorization_divisions)."""
    state = sandbox()
    size = int_arg("pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    ids = set(multi("id"))
    name = (request.args.get("name") or "").casefold()
    with state.lock:
        found = sorted(state.org.divisions.values(), key=lambda d: (d.name.casefold(), d.id))
        if ids:
            found = [d for d in found if d.id in ids]
        if name:
            found = [d for d in found if name in d.name.casefold()]
        page = [d.to_json() for d in page_of(found, size, number)]
    return json_response(
        entity_listing(page, len(found), size, number, path="/api/v2/authorization/divisions")
    )


@bp.get("/api/v2/authorization/divisions/home")
def home_division() -> Response:
    """The org's home division. No permission."""
    state = sandbox()
    with state.lock:
        return json_response(state.org.divisions[state.org.home_division_id].to_json())


@bp.get("/api/v2/authorization/divisions/<division_id>")
def get_division(division_id: str) -> Response:
    state = sandbox()
    with state.lock:
        division = state.org.divisions.get(division_id)
        if division is None:
            raise ApiError.not_found("division", division_id)
        return json_response(division.to_json())


@bp.post("/api/v2/authorization/divisions/<division_id>/objects/<object_type>")
def move_objects(division_id: str, object_type: str) -> Response:
    """Set the division of a list of objects of one type; 204. Only USER and QUEUE objects
    exist in the sandbox; a deleted or unknown user is a 404 and nothing moves."""
    if object_type not in OBJECT_TYPES:
        raise ApiError.bad_request(f"Unknown object type {object_type}", "invalid.value")
    require(*MOVE_USER)
    state = sandbox()
    ids = json_list("object id list")
    if not ids or not all(isinstance(i, str) for i in ids):
        raise ApiError.bad_request("The body must be a non-empty list of object ids")
    with state.lock:
        org = state.org
        if division_id not in org.divisions:
            raise ApiError.not_found("division", division_id)
        if object_type == "USER":
            _move_users(org, ids, division_id, state.clock())
        elif object_type == "QUEUE":
            _move_queues(org, ids, division_id)
        else:
            raise ApiError.not_found(object_type.lower(), ids[0])
    return empty(204)


def _move_users(org: Org, ids: list[str], division_id: str, now: float) -> None:
    """All or nothing: a deleted or unknown user is a 404 before any user moves."""
    users = [org.users.get(i) for i in ids]
    for object_id, user in zip(ids, users, strict=True):
        if user is None or user.state == "deleted":
            raise ApiError.not_found("user", object_id)
    for user in users:
        assert user is not None
        if user.division_id != division_id:
            user.division_id = division_id
            org.touched(user, now)


def _move_queues(org: Org, ids: list[str], division_id: str) -> None:
    for object_id in ids:
        if object_id not in org.queues:
            raise ApiError.not_found("queue", object_id)
    for object_id in ids:
        org.queues[object_id].division_id = division_id


@bp.get("/api/v2/authorization/roles")
def list_roles() -> Response:
    """``OrganizationRoleEntityListing``; ``authorization:role:view``."""
    require("authorization:role:view")
    state = sandbox()
    size = int_arg("pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    ids = set(multi("id"))
    name = (request.args.get("name") or "").casefold()
    with state.lock:
        org = state.org
        found = sorted(org.roles.values(), key=lambda r: (r.name.casefold(), r.id))
        if ids:
            found = [r for r in found if r.id in ids]
        if name:
            found = [r for r in found if r.name.casefold().startswith(name)]
        page = [r.to_json(org.role_user_count(r.id)) for r in page_of(found, size, number)]
    return json_response(
        entity_listing(page, len(found), size, number, path="/api/v2/authorization/roles")
    )


def _subject_name(org: Org, subject_id: str, *, allow_deleted: bool = False) -> str:
    """The name of a user or group subject; 404 for anything else (a deleted user included:
    the stricter reading, since a deleted user holds no grants, genesys-api.md 2.4)."""
    user = org.users.get(subject_id)
    if user is not None and (allow_deleted or user.state != "deleted"):
        return user.name
    group = org.groups.get(subject_id)
    if group is not None:
        return group.name
    raise ApiError.not_found("subject", subject_id)


def _grant_json(org: Org, row: tuple[str, str, str, float]) -> dict[str, Any]:
    subject_id, role_id, division_id, at = row
    return {
        "subjectId": subject_id,
        "division": org.divisions[division_id].to_json(),
        "role": org.roles[role_id].ref(),
        "grantMadeAt": iso(at),
    }


@bp.get("/api/v2/authorization/subjects/<subject_id>")
def get_subject(subject_id: str) -> Response:
    """``AuthzSubject``: the user's grants and (for a user) those of its role-enabled groups,
    each with the ``subjectId`` it comes from; ``authorization:grant:view``."""
    require("authorization:grant:view")
    state = sandbox()
    duplicates = bool_arg("includeDuplicates", False)
    with state.lock:
        org = state.org
        name = _subject_name(org, subject_id)
        rows = org.subject_grants(subject_id, include_duplicates=duplicates)
        grants = [_grant_json(org, row) for row in sorted(rows, key=lambda r: (r[1], r[2], r[0]))]
        version = len(org.grants.get(subject_id, {})) + 1
    return json_response(
        {
            "id": subject_id,
            "name": name,
            "grants": grants,
            "version": version,
            "selfUri": f"/api/v2/authorization/subjects/{subject_id}",
        }
    )


@bp.post("/api/v2/authorization/subjects/<subject_id>/bulkadd")
def bulk_add(subject_id: str) -> Response:
    """``RoleDivisionGrants`` ``{grants: [{roleId, divisionId}]}``; 204. Granting what is held
    already changes nothing. All or nothing: an unknown role or division is a 404 (TF retries
    those: the auth cache lags), an inactive user a 400 (UNCONFIRMED; the stricter reading, so a
    restore must reactivate first). ``authorization:grant:add``."""
    require("authorization:grant:add")
    state = sandbox()
    choice_arg("subjectType", "PC_USER", SUBJECT_TYPES)
    body = json_object(frozenset({"grants"}), "RoleDivisionGrants")
    pairs = body.get("grants")
    if not isinstance(pairs, list) or not pairs:
        raise ApiError.bad_request("grants must be a non-empty list", "invalid.value")
    if len(pairs) > MAX_GRANTS:
        raise ApiError.bad_request(f"At most {MAX_GRANTS} grants per request", "invalid.value")
    wanted: list[tuple[str, str]] = []
    for pair in pairs:
        if (
            not isinstance(pair, dict)
            or set(pair) != {"roleId", "divisionId"}
            or not all(isinstance(v, str) for v in pair.values())
        ):
            raise ApiError.bad_request(
                "each grant is {roleId, divisionId} (RoleDivisionPair)", "invalid.value"
            )
        wanted.append((pair["roleId"], pair["divisionId"]))
    with state.lock:
        org = state.org
        _subject_name(org, subject_id)
        user = org.users.get(subject_id)
        if user is not None and user.state != "active":
            raise ApiError.bad_request(
                f"User {subject_id} is {user.state}: roles cannot be granted to an inactive user.",
                "invalid.value",
            )
        for role_id, division_id in wanted:
            if role_id not in org.roles:
                raise ApiError.not_found("role", role_id)
            if division_id not in org.divisions:
                raise ApiError.not_found("division", division_id)
        now = state.clock()
        for role_id, division_id in wanted:
            org.grant(subject_id, role_id, division_id, now)
    return empty(204)
