"""``/Groups`` over Genesys groups: list (``displayName`` filter), GET, POST, PUT, PATCH, DELETE.

Membership changes arrive in every form Okta and Entra use (idp-behaviour.md 1(g), 2(g)); the
quirks turn them into RFC operations, the PATCH is applied to the group's SCIM form, and the
directory turns the member-set difference into Genesys add/remove calls. PATCH answers 200 with
the group (both IdPs accept 200 with a body, O-20 / E-TUT), without members when the request
says ``excludedAttributes=members``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, Response, request

from scim_bridge.audit import Tag
from scim_bridge.directory import mapping
from scim_bridge.directory.service import GroupView
from scim_bridge.scim import filters, http, quirks
from scim_bridge.scim.context import context, token_name
from scim_bridge.scim.discovery import base_url
from scim_bridge.scim.errors import Mutability, PreconditionFailed, scim_response
from scim_bridge.scim.filters import AttrPath, Compare
from scim_bridge.scim.patch import Operation, apply_patch, parse_operations
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


@dataclasses.dataclass(frozen=True)
class MemberDelta:
    """A PATCH's member operations as the ids it adds and removes, and its other operations."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    others: tuple[Operation, ...]


def _member_ids(value: Any) -> list[str] | None:
    items = value if isinstance(value, list) else [value]
    ids = [i.get("value") if isinstance(i, dict) else None for i in items]
    return [i for i in ids if isinstance(i, str) and i] if all(ids) and ids else None


def _removed_id(path: AttrPath) -> str | None:
    """The id of ``members[value eq "id"]``, or None for any other member path."""
    f = path.value_filter
    if path.sub is None and isinstance(f, Compare) and f.op == "eq" and f.path.name == "value":
        return f.value or None
    return None


def member_delta(operations: list[Operation]) -> MemberDelta | None:
    """The operations as named member additions and removals (Okta's and Entra's membership
    pushes, idp-behaviour.md 1(g) and 2(g)), or None when one of them needs the member list:
    a replace of ``members``, a remove of every member, anything but a plain list of ids. In
    order: a later operation on the same member wins."""
    final: dict[str, bool] = {}
    others: list[Operation] = []
    for op in operations:
        path = op.path
        if path is None:
            if isinstance(op.value, dict) and any(k.lower() == "members" for k in op.value):
                return None
            others.append(op)
            continue
        if (path.attr or "").lower() != "members" or path.uri is not None:
            others.append(op)
            continue
        if op.op == "add" and path.value_filter is None and path.sub is None:
            ids = _member_ids(op.value)
            if ids is None:
                return None
            final.update(dict.fromkeys(ids, True))
        elif op.op == "remove" and (removed := _removed_id(path)) is not None:
            final[removed] = False
        else:
            return None
    return MemberDelta(
        added=tuple(m for m, present in final.items() if present),
        removed=tuple(m for m, present in final.items() if not present),
        others=tuple(others),
    )


def _patch_members(group_id: str, delta: MemberDelta) -> Response:
    """Member changes without listing the group's members. The answer is 204 once members
    changed (RFC 7644 §3.5.2; Entra expects it, Okta accepts it: idp-behaviour.md 1(g) 4,
    2(g)): Genesys answers a member change with no version, and reading the group again only
    to answer would cost a call. ``?attributes=`` asks for the group: it is read then."""
    ctx = context()
    others = list(delta.others)

    def patch(before: Resource) -> Resource:
        return _validated(apply_patch(before, others, "Group"))

    view = ctx.directory.change_group_members(
        group_id,
        delta.added,
        delta.removed,
        transform=patch if others else None,
        render=render,
        expected_version=http.if_match(),
    )
    if view is None and not request.args.get("attributes"):
        return Response(status=204)
    if view is None or _wants_members():
        view = ctx.directory.get_group(group_id, with_members=_wants_members())
    return _respond(view)


def patch_group(group_id: str) -> Response:
    ctx = context()
    operations = parse_operations(quirks.normalise_patch(http.json_body(), resource_id=group_id))
    detail: dict[str, object] = {"method": "PATCH", "operations": [o.op for o in operations]}
    delta = member_delta(operations)
    if delta is not None:
        response = _patch_members(group_id, delta)
        ctx.record(Tag.SCIM_GROUP_UPDATED, scim_id=group_id, detail=detail)
        return response

    def patch(before: Resource) -> Resource:
        return _validated(apply_patch(before, operations, "Group"))

    view = ctx.directory.update_group(
        group_id, patch, render=render, expected_version=http.if_match()
    )
    ctx.record(Tag.SCIM_GROUP_UPDATED, scim_id=group_id, detail=detail)
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
