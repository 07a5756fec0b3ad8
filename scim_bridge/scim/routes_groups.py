"""``/Groups`` over Genesys groups: list (``displayName`` filter), GET, POST, PUT, PATCH, DELETE.

Membership changes arrive in every form Okta and Entra use (idp-behaviour.md 1(g), 2(g)); the
quirks turn them into RFC operations, the PATCH is applied to the group's SCIM form, and the
directory turns the member-set difference into Genesys add/remove calls. PATCH answers 200 with
the group (both IdPs accept 200 with a body, O-20 / E-TUT), without members when the request
says ``excludedAttributes=members``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from scim_bridge.audit import Tag
from scim_bridge.directory import mapping
from scim_bridge.directory.service import GroupView
from scim_bridge.scim import filters, http, quirks
from scim_bridge.scim.context import context, token_name
from scim_bridge.scim.discovery import base_url
from scim_bridge.scim.errors import Mutability, PreconditionFailed, scim_response
from scim_bridge.scim.patch import apply_patch, parse_operations
from scim_bridge.scim.schemas import load_resource

Resource = dict[str, Any]


def render(view: GroupView) -> Resource:
    base = base_url()
    return mapping.group_to_scim(
        view.group,
        view.member_ids,
        view.local,
        location=f"{base}/Groups/{view.group.id}",
        user_location=f"{base}/Users",
    )


def _wants_members() -> bool:
    return _members_wanted(
        http.names(request.args.get("attributes")),
        http.names(request.args.get("excludedAttributes")),
    )


def _members_wanted(attributes_: list[str], excluded_: list[str]) -> bool:
    attributes = {a.lower() for a in attributes_}
    excluded = {a.lower() for a in excluded_}
    if attributes:
        return any(a == "members" or a.startswith("members.") for a in attributes)
    return "members" not in excluded


def _respond(view: GroupView, status: int = 200) -> Response:
    return http.respond(render(view), etag=mapping.etag(view.group.version), status=status)


def _validated(resource: Resource) -> Resource:
    return load_resource(resource, "Group")


def search(params: http.Query) -> Resource:
    """A ListResponse of Groups (GET /Groups, POST /Groups/.search, part of POST /.search)."""
    query = filters.plan_group_query(params.filter)
    total, views = context().directory.list_groups(
        query,
        start_index=params.start,
        count=params.count,
        with_members=_members_wanted(params.attributes, params.excluded),
        render=render,
    )
    resources = [http.project(render(v), params.attributes, params.excluded) for v in views]
    return http.list_response(resources, total, params.start)


def list_groups() -> Response:
    return scim_response(search(http.query_from_args()))


def search_groups() -> Response:
    return scim_response(search(http.query_from_body()))


def get_group(group_id: str) -> Response:
    view = context().directory.get_group(group_id, with_members=_wants_members())
    return _respond(view)


def create_group() -> Response:
    ctx = context()
    data = _validated(quirks.normalise_resource(http.json_body()))
    view = ctx.directory.create_group(data, owner=token_name())
    ctx.record(
        Tag.SCIM_GROUP_CREATED,
        scim_id=view.group.id,
        detail={"members": len(view.member_ids or ())},
    )
    return _respond(view, 201)


def replace_group(group_id: str) -> Response:
    ctx = context()
    data = quirks.normalise_resource(http.json_body(), resource_id=group_id)
    if isinstance(data, dict) and "id" in data:
        raise Mutability("'id' cannot be changed (RFC 7643 §3.1).")
    data = _validated(data)

    def replace(before: Resource) -> Resource:
        after = dict(data)
        after["id"] = before["id"]
        after.setdefault("members", [])
        return after

    view = ctx.directory.update_group(
        group_id, replace, render=render, expected_version=http.if_match()
    )
    ctx.record(Tag.SCIM_GROUP_UPDATED, scim_id=group_id, detail={"method": "PUT"})
    return _respond(view)


def patch_group(group_id: str) -> Response:
    ctx = context()
    operations = parse_operations(quirks.normalise_patch(http.json_body(), resource_id=group_id))

    def patch(before: Resource) -> Resource:
        return _validated(apply_patch(before, operations, "Group"))

    view = ctx.directory.update_group(
        group_id, patch, render=render, expected_version=http.if_match()
    )
    ctx.record(
        Tag.SCIM_GROUP_UPDATED,
        scim_id=group_id,
        detail={"method": "PATCH", "operations": [o.op for o in operations]},
    )
    if not _wants_members():
        view = GroupView(view.group, None, view.local)
    return _respond(view)


def delete_group(group_id: str) -> Response:
    ctx = context()
    expected = http.if_match()
    if expected is not None:
        current = ctx.directory.get_group(group_id, with_members=False)
        if current.group.version != expected:
            raise PreconditionFailed(
                f"If-Match names version {expected}; the current one is {current.group.version}."
            )
    ctx.directory.delete_group(group_id)
    ctx.record(Tag.SCIM_GROUP_DELETED, scim_id=group_id)
    return Response(status=204)


def register(bp: Blueprint) -> None:
    bp.get("/Groups")(list_groups)
    bp.post("/Groups/.search")(search_groups)
    bp.get("/Groups/<group_id>")(get_group)
    bp.post("/Groups")(create_group)
    bp.put("/Groups/<group_id>")(replace_group)
    bp.patch("/Groups/<group_id>")(patch_group)
    bp.delete("/Groups/<group_id>")(delete_group)
