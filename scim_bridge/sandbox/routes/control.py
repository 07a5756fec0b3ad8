"""``/sandbox/...``: not Genesys. Seed, inspect and inject faults (genesys-api.md, first table).

No token is needed and no rate budget is spent; these requests are left out of the stats.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from scim_bridge.sandbox.auth import Client
from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.http import json_object, json_response, sandbox
from scim_bridge.sandbox.model import Conversation, User, iso
from scim_bridge.sandbox.org import Org
from scim_bridge.sandbox.routes.users import render
from scim_bridge.sandbox.seed import conversation
from scim_bridge.sandbox.state import SandboxState

bp = Blueprint("control", __name__)

MAX_USERS = 100_000
MAX_HISTORY_DAYS = 3650
MEDIA_TYPES = ("voice", "chat", "email", "message", "callback", "video")


def _optional_body(allowed: frozenset[str]) -> dict[str, Any]:
    if not request.get_data(cache=True).strip():
        return {}
    return json_object(allowed)


@bp.post("/sandbox/reset")
def reset() -> Response:
    state = sandbox()
    body = _optional_body(frozenset({"users", "seed", "history_days"}))
    users, seed = body.get("users", state.config.users), body.get("seed", state.config.seed)
    days = body.get("history_days", state.config.history_days)
    if isinstance(users, bool) or not isinstance(users, int) or not 0 <= users <= MAX_USERS:
        raise ApiError.bad_request(f"users must be an integer between 0 and {MAX_USERS}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ApiError.bad_request("seed must be an integer")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_HISTORY_DAYS:
        raise ApiError.bad_request(
            f"history_days must be an integer between 1 and {MAX_HISTORY_DAYS}"
        )
    state.reset(users, seed, days)
    return json_response(_summary(state))


@bp.get("/sandbox")
def info() -> Response:
    state = sandbox()
    with state.lock:
        return json_response(_summary(state))


def _summary(state: SandboxState) -> dict[str, Any]:
    org = state.org
    counts = dict.fromkeys(("active", "inactive", "deleted"), 0)
    for user in org.users.values():
        counts[user.state] += 1
    return {
        "users": state.users,
        "seed": state.seed,
        "history_days": state.history_days,
        "client_id": state.config.client_id,
        "states": counts,
        "queues": len(org.queues),
        "groups": len(org.groups),
        "conversations": len(org.conversations),
        "home_division_id": org.home_division_id,
        # name -> id, for tests and demos that want a role, division, skill or language.
        "divisions": {d.name: d.id for d in org.divisions.values()},
        "roles": {r.name: r.id for r in org.roles.values()},
        "skills": {s.name: s.id for s in org.skills.values()},
        "languages": {lang.name: lang.id for lang in org.languages.values()},
    }


@bp.get("/sandbox/faults")
def get_faults() -> Response:
    state = sandbox()
    with state.lock:
        return json_response(state.faults.to_json())


@bp.post("/sandbox/faults")
def set_faults() -> Response:
    state = sandbox()
    faults = state.set_faults(json_object())
    with state.lock:
        return json_response(faults.to_json())


@bp.get("/sandbox/stats")
def stats() -> Response:
    state = sandbox()
    with state.lock:
        return json_response(state.stats.to_json())


@bp.post("/sandbox/clients")
def add_client() -> Response:
    """Register an OAuth client with exactly ``permissions`` (["*"] for all): genesys-api.md 5.5."""
    state = sandbox()
    body = json_object(frozenset({"client_id", "client_secret", "permissions"}))
    client_id, secret = body.get("client_id"), body.get("client_secret")
    permissions = body.get("permissions", [])
    if not isinstance(client_id, str) or not client_id or not isinstance(secret, str) or not secret:
        raise ApiError.bad_request("client_id and client_secret are required strings")
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise ApiError.bad_request("permissions must be a list of strings")
    granted = None if "*" in permissions else frozenset(permissions)
    with state.lock:
        state.clients.register(Client(client_id, secret, granted))
    return json_response(
        {"client_id": client_id, "permissions": "*" if granted is None else sorted(granted)}
    )


@bp.post("/sandbox/tokens/expire")
def expire_tokens() -> Response:
    """Expire every issued token now: the next API call answers 401 ``credentials.expired``."""
    state = sandbox()
    with state.lock:
        return json_response({"expired": state.clients.expire_all(state.clock())})


@bp.get("/sandbox/users/<user_id>")
def user_record(user_id: str) -> Response:
    """The full record in any state, with queue memberships and history counts."""
    state = sandbox()
    with state.lock:
        return json_response(_record(state, user_id))


def _record(state: SandboxState, user_id: str) -> dict[str, Any]:
    org = state.org
    user = org.users.get(user_id)
    if user is None:
        raise ApiError.not_found("user", user_id)
    body = render(state, user, {"conversationSummary"})
    body["queues"] = [
        {"id": q.id, "name": q.name, "joined": joined, "memberBy": org.member_by(q.id, user_id)}
        for q, joined in org.memberships(user_id)
    ]
    body["groups"] = [
        {"id": g.id, "name": g.name} for g in org.groups.values() if user_id in g.member_ids
    ]
    body["activeConversation"] = user_id in org.active_conversation
    body["activeConversationId"] = org.active_conversation.get(user_id)
    body["conversationCount"] = len(org.history.get(user_id, []))
    body["footprint"] = {
        "divisionId": user.division_id,
        "grants": [
            {"subjectId": subject, "roleId": role, "divisionId": division}
            for subject, role, division, _ in sorted(
                org.subject_grants(user_id, include_duplicates=True)
            )
        ],
        "routingSkills": dict(sorted(org.user_skills.get(user_id, {}).items())),
        "routingLanguages": dict(sorted(org.user_languages.get(user_id, {}).items())),
        "gdprDeleted": user.gdpr_deleted,
    }
    oldest = org.oldest_conversation(user_id)
    body["oldestConversationAt"] = None if oldest is None else iso(oldest)
    body["stateHistory"] = [{"state": st, "at": iso(at)} for st, at in user.state_history]
    body["activeSessions"] = len(state.clients.sessions(user_id, state.clock()))
    return body


@bp.post("/sandbox/users/<user_id>/sessions")
def sign_in(user_id: str) -> Response:
    """The user signs in to Genesys: ``{"token", "expires_in"}``, a bearer token that
    authenticates as the user (``GET /api/v2/users/me``) until it expires or ``DELETE
    /api/v2/tokens/{userId}`` ends it. An inactive or deleted user cannot sign in (HELP ?p=245465:
    an inactive user "cannot log in"): 409."""
    state = sandbox()
    with state.lock:
        user = state.org.users.get(user_id)
        if user is None:
            raise ApiError.not_found("user", user_id)
        if user.state != "active":
            raise ApiError(409, f"A {user.state} user cannot sign in.", "general.conflict")
        ttl = state.faults.token_ttl_s
        token = state.clients.sign_in(user_id, state.clock(), ttl)
        return json_response({"token": token.value, "expires_in": ttl})


@bp.post("/sandbox/users/<user_id>/gdpr-delete")
def gdpr_delete(user_id: str) -> Response:
    """Mark the user deleted through the GDPR API (``POST /api/v2/gdpr/requests`` GDPR_DELETE,
    not simulated): it is deleted, keeps its email reserved (the stricter reading), and a
    restore (PATCH ``state``) answers 400 (genesys-api.md 2.4: it "cannot be undeleted")."""
    state = sandbox()
    with state.lock:
        org = state.org
        user = org.users.get(user_id)
        if user is None:
            raise ApiError.not_found("user", user_id)
        org.strip_direct_grants(user_id)
        org.strip_routing(user_id)
        user.division_id = org.home_division_id
        user.gdpr_deleted = True
        if user.state != "deleted":
            org.set_state(user, "deleted", state.clock())
        return json_response(_record(state, user_id))


@bp.post("/sandbox/users/<user_id>/conversation")
def set_conversation(user_id: str) -> Response:
    """Start (``active: true``) or end (``false``) a live conversation for the user. While it is
    live, ``expand=conversationSummary`` shows it and analytics returns it without an end."""
    state = sandbox()
    body = json_object(frozenset({"active", "mediaType"}))
    active, media = body.get("active"), body.get("mediaType", "voice")
    if not isinstance(active, bool):
        raise ApiError.bad_request("active must be a boolean")
    if media not in MEDIA_TYPES:
        raise ApiError.bad_request(f"mediaType must be one of {', '.join(MEDIA_TYPES)}")
    with state.lock:
        org, now = state.org, state.clock()
        user = org.users.get(user_id)
        if user is None:
            raise ApiError.not_found("user", user_id)
        current = org.active_conversation.get(user_id)
        if active and current is None:
            _start_conversation(org, user, media, now)
        elif not active and current is not None:
            _end_conversation(org.conversations[current], now)
            del org.active_conversation[user_id]
        return json_response(_record(state, user_id))


def _start_conversation(org: Org, user: User, media: str, now: float) -> None:
    if user.state == "deleted":
        raise ApiError(409, "A deleted user cannot take a conversation.", "general.conflict")
    queues = [q.id for q, _ in org.memberships(user.id)]
    live = conversation(org, now, media, queues[0] if queues else None, [user], ended=False)
    org.add_conversation(live)
    org.active_conversation[user.id] = live.id


def _end_conversation(ended: Conversation, now: float) -> None:
    ended.end = now
    for participant in ended.participants:
        for session in participant.sessions:
            for segment in session.segments:
                if segment.end is None:
                    segment.end = now


@bp.post("/sandbox/users/<user_id>/version-bump")
def bump_version(user_id: str) -> Response:
    """Simulate a concurrent editor: the user's version goes up by one, nothing else changes."""
    state = sandbox()
    with state.lock:
        user = state.org.users.get(user_id)
        if user is None:
            raise ApiError.not_found("user", user_id)
        state.org.touched(user, state.clock())
        return json_response(_record(state, user_id))


@bp.post("/sandbox/queues/<queue_id>/groups")
def route_group(queue_id: str) -> Response:
    """Route a group to a queue: each member (and each later member) gets a ``memberBy=group``
    membership, which ``DELETE .../members/{userId}`` refuses (docs/sandbox.md)."""
    state = sandbox()
    body = json_object(frozenset({"groupId"}))
    group_id = body.get("groupId")
    with state.lock:
        org = state.org
        if queue_id not in org.queues:
            raise ApiError.not_found("queue", queue_id)
        if not isinstance(group_id, str) or group_id not in org.groups:
            raise ApiError.bad_request("groupId must name a group")
        org.link_group(queue_id, group_id)
        members = [u for u, _ in org.queue_members[queue_id].items()]
        grouped = [u for u in members if org.member_by(queue_id, u) == "group"]
        return json_response({"queueId": queue_id, "groupId": group_id, "memberIds": grouped})


@bp.get("/sandbox/analytics/jobs")
def list_jobs() -> Response:
    """Every async details job submitted since the reset: id, state, interval, userIds."""
    state = sandbox()
    with state.lock:
        now = state.clock()
        return json_response({"jobs": [j.control_json(now) for j in state.jobs.jobs.values()]})


@bp.post("/sandbox/analytics/jobs/<job_id>/expire")
def expire_job(job_id: str) -> Response:
    """Expire a job now (its results are gone), as if it had outlived ``async_job_ttl_s``."""
    state = sandbox()
    with state.lock:
        job = state.jobs.get(job_id)
        job.expired_at = state.clock()
        return json_response(job.control_json(state.clock()))
