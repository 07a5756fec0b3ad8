"""Queue memberships: genesys-api.md section 3 (and 5.5 for permissions).

A membership is (queue, user, joined). ``GET /users/{id}/queues`` answers one ``joined`` value at
a time (default true), so a full list needs both calls (UNCONFIRMED semantics; this is the
stricter reading). Memberships survive deactivation and deletion (UNCONFIRMED, 2.4): the bridge
has to drain them itself. A membership a group gives (``memberBy=group``) cannot be removed one
user at a time (UNCONFIRMED, 3; the stricter reading): ``DELETE .../members/{userId}`` and a bulk
delete naming that user answer 400, and only leaving the group (or the group leaving the queue)
ends it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.http import (
    bool_arg,
    empty,
    entity_listing,
    int_arg,
    json_list,
    json_response,
    page_of,
    require,
    sandbox,
)
from scim_bridge.sandbox.model import Queue
from scim_bridge.sandbox.org import Org
from scim_bridge.sandbox.routes.users import lookup

bp = Blueprint("routing", __name__)

VIEW = ("routing:queue:view",)
MANAGE = ("routing:queue:edit", "routing:queueMember:manage")
JOIN = ("routing:queue:join", "routing:queueMember:manage")
MAX_BULK_MEMBERS = 100  # "Bulk add or delete up to 100 queue members" (3)
MAX_MEMBER_PAGE_SIZE = 100  # GET /routing/queues/{q}/members pageSize <= 100 (3)
MAX_PAGE_SIZE = 500  # UNCONFIRMED for the other listings; as for GET /users


def _queue_json(org: Org, queue: Queue) -> dict[str, Any]:
    members = org.queue_members[queue.id]
    return queue.to_json(
        org.divisions[queue.division_id], len(members), sum(1 for j in members.values() if j)
    )


def _queue(org: Org, queue_id: str) -> Queue:
    queue = org.queues.get(queue_id)
    if queue is None:
        raise ApiError.not_found("queue", queue_id)
    return queue


@bp.get("/api/v2/users/<user_id>/queues")
def user_queues(user_id: str) -> Response:
    """``joined`` defaults to true: the unjoined memberships need ``joined=false`` (3)."""
    require(*VIEW)
    state = sandbox()
    size = int_arg("pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    joined = bool_arg("joined", True)
    with state.lock:
        org = state.org
        lookup(org, user_id)
        matching = [(q, j) for q, j in org.memberships(user_id) if j == joined]
        page = [{**_queue_json(org, q), "joined": j} for q, j in page_of(matching, size, number)]
    path = f"/api/v2/users/{user_id}/queues"
    return json_response(
        entity_listing(
            page, len(matching), size, number, path=path, query=f"&joined={str(joined).lower()}"
        )
    )


@bp.patch("/api/v2/users/<user_id>/queues")
def join_queues(user_id: str) -> Response:
    """Join or unjoin; pairs for queues the user is not a member of are disregarded (3)."""
    require(*JOIN)
    state = sandbox()
    body = json_list("list of UserQueue")
    wanted: list[tuple[str, bool]] = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ApiError.bad_request("each item needs a queue id", "invalid.value")
        if not isinstance(item.get("joined"), bool):
            raise ApiError.bad_request("each item needs joined true or false", "invalid.value")
        wanted.append((item["id"], item["joined"]))
    with state.lock:
        org = state.org
        lookup(org, user_id)
        changed = []
        for queue_id, joined in wanted:
            if user_id in org.queue_members.get(queue_id, {}):
                org.set_member(queue_id, user_id, joined)
                changed.append({**_queue_json(org, org.queues[queue_id]), "joined": joined})
    return json_response(
        entity_listing(
            changed, len(changed), max(len(changed), 1), 1, path=f"/api/v2/users/{user_id}/queues"
        )
    )


@bp.get("/api/v2/routing/queues")
def list_queues() -> Response:
    require(*VIEW)
    state = sandbox()
    size = int_arg("pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    with state.lock:
        org = state.org
        queues = sorted(org.queues.values(), key=lambda q: (q.name.casefold(), q.id))
        page = [_queue_json(org, q) for q in page_of(queues, size, number)]
    return json_response(
        entity_listing(page, len(queues), size, number, path="/api/v2/routing/queues")
    )


@bp.get("/api/v2/routing/queues/<queue_id>")
def get_queue(queue_id: str) -> Response:
    require(*VIEW)
    state = sandbox()
    with state.lock:
        return json_response(_queue_json(state.org, _queue(state.org, queue_id)))


@bp.get("/api/v2/routing/queues/<queue_id>/members")
def queue_members(queue_id: str) -> Response:
    require(*VIEW)
    state = sandbox()
    size = int_arg("pageSize", 25, maximum=MAX_MEMBER_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    joined_filter = bool_arg("joined", True) if "joined" in request.args else None
    member_by = request.args.get("memberBy") or None
    if member_by not in (None, "user", "group"):
        raise ApiError.bad_request("memberBy must be user or group", "invalid.value")
    with state.lock:
        org = state.org
        _queue(org, queue_id)
        members = [
            (org.users[u], j)
            for u, j in org.queue_members[queue_id].items()
            if (joined_filter is None or j == joined_filter)
            and (member_by is None or org.member_by(queue_id, u) == member_by)
        ]
        members.sort(key=lambda pair: pair[0].sort_key())
        page = [
            {
                "id": user.id,
                "name": user.name,
                "user": {"id": user.id, "name": user.name, "selfUri": f"/api/v2/users/{user.id}"},
                "joined": joined,
                "memberBy": org.member_by(queue_id, user.id),
                "selfUri": f"/api/v2/routing/queues/{queue_id}/members/{user.id}",
            }
            for user, joined in page_of(members, size, number)
        ]
    return json_response(
        entity_listing(
            page, len(members), size, number, path=f"/api/v2/routing/queues/{queue_id}/members"
        )
    )


@bp.delete("/api/v2/routing/queues/<queue_id>/members/<user_id>")
def remove_member(queue_id: str, user_id: str) -> Response:
    """204 "Deleted."; 404 when the queue is unknown or the user is not a member (3); 400 for a
    membership a group gives (UNCONFIRMED; the stricter reading)."""
    require(*MANAGE)
    state = sandbox()
    with state.lock:
        org = state.org
        _queue(org, queue_id)
        _refuse_group_members(org, queue_id, [user_id])
        if not org.remove_member(queue_id, user_id):
            raise ApiError.not_found("queue member", user_id)
    return empty(204)


@bp.post("/api/v2/routing/queues/<queue_id>/members")
def bulk_members(queue_id: str) -> Response:
    """Bulk add, or with ``delete=true`` remove, up to 100 members (3). Added members start
    unjoined (UNCONFIRMED; the stricter reading: the caller must join them explicitly)."""
    require(*MANAGE)
    state = sandbox()
    delete = bool_arg("delete", False)
    body = json_list("list of WritableEntity")
    if len(body) > MAX_BULK_MEMBERS:
        raise ApiError.bad_request(f"At most {MAX_BULK_MEMBERS} members per request")
    ids = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ApiError.bad_request("each member needs an id", "invalid.value")
        ids.append(item["id"])
    with state.lock:
        org = state.org
        _queue(org, queue_id)
        if delete:
            _refuse_group_members(org, queue_id, ids)
            for user_id in ids:
                org.remove_member(queue_id, user_id)
        else:
            unknown = [u for u in ids if u not in org.users or org.users[u].state == "deleted"]
            if unknown:
                raise ApiError.bad_request(f"Unknown or deleted user(s): {', '.join(unknown)}")
            for user_id in ids:
                if user_id not in org.queue_members[queue_id]:
                    org.set_member(queue_id, user_id, joined=False)
    return empty(204)


def _refuse_group_members(org: Org, queue_id: str, user_ids: list[str]) -> None:
    """400 when any of ``user_ids`` is in ``queue_id`` through a group (memberBy=group)."""
    by_group = [u for u in user_ids if org.member_by(queue_id, u) == "group"]
    if by_group:
        raise ApiError.bad_request(
            "Queue members added by group membership cannot be removed individually: "
            f"{', '.join(by_group)}. Remove them from the group instead.",
            "bad.request",
        )
