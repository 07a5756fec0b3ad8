"""Groups API (genesys-api.md section 7), following the users API's conventions where the
statuses are not confirmed: 200 with the entity, 404 ``not.found``, 409 on a stale ``version``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from scim_bridge.sandbox.errors import VERSION_MISMATCH, ApiError
from scim_bridge.sandbox.http import (
    choice_arg,
    entity_listing,
    int_arg,
    json_object,
    json_response,
    multi,
    page_of,
    require,
    sandbox,
)
from scim_bridge.sandbox.model import Group
from scim_bridge.sandbox.org import Org
from scim_bridge.sandbox.routes.users import render
from scim_bridge.sandbox.search import compile_query, paging, search_response, sort_order

bp = Blueprint("groups", __name__)

# Permission names for groups are not in genesys-api.md: UNCONFIRMED, the directory:group:* family.
ADD, EDIT, DELETE = ("directory:group:add",), ("directory:group:edit",), ("directory:group:delete",)
MAX_PAGE_SIZE = 100  # UNCONFIRMED
MAX_REMOVE = 50  # "A maximum of 50 members are allowed per request" (7)
MAX_ADD = 50  # UNCONFIRMED; kept equal to the removal cap
TYPES = ("official", "social")
VISIBILITIES = ("public", "owners", "members")
CREATE_KEYS = frozenset(
    {
        "id", "name", "description", "dateModified", "memberCount", "state", "version", "type",
        "images", "addresses", "rulesVisible", "visibility", "rolesEnabled", "includeOwners",
        "callsEnabled", "email", "ownerIds", "selfUri",
    }
)  # fmt: skip
UPDATE_KEYS = frozenset(
    {
        "id", "name", "description", "state", "version", "images", "addresses", "rulesVisible",
        "visibility", "rolesEnabled", "includeOwners", "callsEnabled", "email", "ownerIds",
        "selfUri",
    }
)  # fmt: skip
SEARCH_KEYS = frozenset({"sortOrder", "sortBy", "pageSize", "pageNumber", "sort", "query"})
SEARCH_FIELDS: dict[str, Any] = {
    "id": lambda g: [g.id],
    "name": lambda g: [g.name],
    "description": lambda g: [g.description] if g.description else [],
    "state": lambda g: [g.state],
    "type": lambda g: [g.type],
    "visibility": lambda g: [g.visibility],
}


def _group(org: Org, group_id: str) -> Group:
    group = org.groups.get(group_id)
    if group is None:
        raise ApiError.not_found("group", group_id)
    return group


def _sorted(org: Org) -> list[Group]:
    return sorted(org.groups.values(), key=lambda g: (g.name.casefold(), g.id))


def _owner_ids(org: Org, body: dict[str, Any]) -> list[str] | None:
    if "ownerIds" not in body:
        return None
    owners = body["ownerIds"]
    if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
        raise ApiError.bad_request("ownerIds must be a list of user ids", "invalid.value")
    unknown = [o for o in owners if o not in org.users]
    if unknown:
        raise ApiError.bad_request(f"Unknown owner(s): {', '.join(unknown)}", "invalid.value")
    return list(owners)


def _check_version(group: Group, version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise ApiError.bad_request("version is required and must be an integer", "invalid.value")
    if version != group.version:
        raise ApiError(
            409,
            f"The version supplied ({version}) does not match the current version of the "
            f"group ({group.version}).",
            VERSION_MISMATCH,
        )


def _touch(group: Group, now: float) -> None:
    group.version += 1
    group.date_modified = now


@bp.get("/api/v2/groups")
def list_groups() -> Response:
    state = sandbox()
    size = int_arg("pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    order = choice_arg("sortOrder", "ascending", ("ascending", "descending", "ASC", "DESC"))
    ids = set(multi("id"))
    with state.lock:
        groups = [g for g in _sorted(state.org) if not ids or g.id in ids]
        if order in ("descending", "DESC"):
            groups.reverse()
        page = [g.to_json() for g in page_of(groups, size, number)]
    return json_response(entity_listing(page, len(groups), size, number, path="/api/v2/groups"))


@bp.post("/api/v2/groups")
def create_group() -> Response:
    """``GroupCreate``: name, type and visibility required; a taken name is a 409 (UNCONFIRMED)."""
    require(*ADD)
    state = sandbox()
    body = json_object(CREATE_KEYS, "GroupCreate")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError.bad_request("name is required", "invalid.value")
    if body.get("type") not in TYPES:
        raise ApiError.bad_request(f"type is required: {' or '.join(TYPES)}", "invalid.value")
    if body.get("visibility") not in VISIBILITIES:
        raise ApiError.bad_request(
            f"visibility is required: {', '.join(VISIBILITIES)}", "invalid.value"
        )
    with state.lock:
        org, now = state.org, state.clock()
        if org.group_by_name(name) is not None:
            raise ApiError(409, f"A group named {name} already exists.", "general.conflict")
        group = Group(
            id=org.new_id(),
            name=name.strip(),
            description=body.get("description"),
            type=body["type"],
            visibility=body["visibility"],
            rules_visible=bool(body.get("rulesVisible", True)),
            date_modified=now,
            owner_ids=_owner_ids(org, body) or [],
        )
        org.groups[group.id] = group
        return json_response(group.to_json())


@bp.get("/api/v2/groups/<group_id>")
def get_group(group_id: str) -> Response:
    state = sandbox()
    with state.lock:
        return json_response(_group(state.org, group_id).to_json())


@bp.put("/api/v2/groups/<group_id>")
def update_group(group_id: str) -> Response:
    """``GroupUpdate`` with the current ``version``; a stale one is a 409."""
    require(*EDIT)
    state = sandbox()
    body = json_object(UPDATE_KEYS, "GroupUpdate")
    with state.lock:
        org = state.org
        group = _group(org, group_id)
        _check_version(group, body.get("version"))
        if "name" in body:
            name = body["name"]
            if not isinstance(name, str) or not name.strip():
                raise ApiError.bad_request("name must be a non-empty string", "invalid.value")
            holder = org.group_by_name(name)
            if holder is not None and holder.id != group.id:
                raise ApiError(409, f"A group named {name} already exists.", "general.conflict")
            group.name = name.strip()
        if "description" in body:
            group.description = body["description"]
        if "visibility" in body:
            if body["visibility"] not in VISIBILITIES:
                raise ApiError.bad_request(
                    f"visibility must be one of {', '.join(VISIBILITIES)}", "invalid.value"
                )
            group.visibility = body["visibility"]
        if "rulesVisible" in body:
            group.rules_visible = bool(body["rulesVisible"])
        owners = _owner_ids(org, body)
        if owners is not None:
            group.owner_ids = owners
        _touch(group, state.clock())
        return json_response(group.to_json())


@bp.delete("/api/v2/groups/<group_id>")
def delete_group(group_id: str) -> Response:
    require(*DELETE)
    state = sandbox()
    with state.lock:
        _group(state.org, group_id)
        state.org.group_removed(group_id)
        del state.org.groups[group_id]
    return json_response({})


@bp.post("/api/v2/groups/search")
def search_groups() -> Response:
    state = sandbox()
    body = json_object(SEARCH_KEYS, "GroupSearchRequest")
    size, number = paging(body, MAX_PAGE_SIZE)
    descending = sort_order(body)
    match = compile_query(body.get("query"), SEARCH_FIELDS)
    with state.lock:
        found = [g for g in _sorted(state.org) if match(g)]
        if descending:
            found.reverse()
        results = [g.to_json() for g in page_of(found, size, number)]
    return json_response(search_response(results, len(found), size, number, "groups"))


@bp.get("/api/v2/groups/<group_id>/members")
def list_members(group_id: str) -> Response:
    """Members as a ``UserEntityListing``; deleted users are left out."""
    state = sandbox()
    size = int_arg("pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    order = choice_arg("sortOrder", "ASC", ("ASC", "DESC", "ascending", "descending"))
    with state.lock:
        org = state.org
        group = _group(org, group_id)
        users = sorted(
            (org.users[u] for u in group.member_ids if org.users[u].state != "deleted"),
            key=lambda u: u.sort_key(),
            reverse=order in ("DESC", "descending"),
        )
        page = [render(state, u) for u in page_of(users, size, number)]
    path = f"/api/v2/groups/{group_id}/members"
    return json_response(entity_listing(page, len(users), size, number, path=path))


@bp.post("/api/v2/groups/<group_id>/members")
def add_members(group_id: str) -> Response:
    """``GroupMembersUpdate {memberIds, version}``: the group's current version is required."""
    require(*EDIT)
    state = sandbox()
    body = json_object(frozenset({"memberIds", "version"}), "GroupMembersUpdate")
    member_ids = body.get("memberIds")
    if not isinstance(member_ids, list) or not all(isinstance(m, str) for m in member_ids):
        raise ApiError.bad_request("memberIds must be a list of user ids", "invalid.value")
    if not member_ids or len(member_ids) > MAX_ADD:
        raise ApiError.bad_request(f"memberIds must hold 1 to {MAX_ADD} ids", "invalid.value")
    with state.lock:
        org = state.org
        group = _group(org, group_id)
        _check_version(group, body.get("version"))
        unknown = [m for m in member_ids if m not in org.users or org.users[m].state == "deleted"]
        if unknown:
            raise ApiError.bad_request(f"Unknown or deleted user(s): {', '.join(unknown)}")
        for member in member_ids:
            group.member_ids[member] = None
            org.group_member_added(group_id, member)
        _touch(group, state.clock())
    return json_response({}, 202)


@bp.delete("/api/v2/groups/<group_id>/members")
def remove_members(group_id: str) -> Response:
    """``?ids=a,b``, at most 50 per request (7)."""
    require(*EDIT)
    state = sandbox()
    ids = multi("ids")
    if not ids:
        raise ApiError.bad_request("ids is required", "invalid.value")
    if len(ids) > MAX_REMOVE:
        raise ApiError.bad_request(f"A maximum of {MAX_REMOVE} members are allowed per request")
    with state.lock:
        group = _group(state.org, group_id)
        removed = [m for m in ids if m in group.member_ids]
        for member in removed:
            del group.member_ids[member]
            state.org.group_member_removed(group_id, member)
        if removed:
            _touch(group, state.clock())
    return json_response({}, 202)
