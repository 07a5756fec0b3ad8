"""Users API: list, read, create, update, soft delete, search (genesys-api.md section 2)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from scim_bridge.sandbox.errors import ACTIVE_CONVERSATION, VERSION_MISMATCH, ApiError
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
from scim_bridge.sandbox.model import User
from scim_bridge.sandbox.org import Org
from scim_bridge.sandbox.search import (
    compile_query,
    criterion_values,
    paging,
    search_response,
    sort_order,
    walk,
)
from scim_bridge.sandbox.state import SandboxState

bp = Blueprint("users", __name__)

# genesys-api.md 2.1; only conversationSummary and routingStatus change the answer here.
EXPAND_OPTIONS = frozenset(
    {
        "routingStatus", "presence", "integrationPresence", "conversationSummary", "outOfOffice",
        "geolocation", "station", "authorization", "lasttokenissued", "authorization.unusedRoles",
        "team", "workPlanBidRanks", "externalContactsSettings", "groups", "customAttributes",
        "profileSkills", "certifications", "locations", "skills", "languages",
        "languagePreference", "employerInfo", "biography", "dateLastLogin", "dateWelcomeSent",
    }
)  # fmt: skip
MAX_LIST_PAGE_SIZE = 500  # UNCONFIRMED (2.2); above it -> 400
MAX_SEARCH_PAGE_SIZE = 100  # UNCONFIRMED (2.6); above it -> 400
EDIT = ("admin", "directory:user:edit", "directory:organization:admin")
DELETE = ("admin", "directory:user:delete", "directory:organization:admin")
UPDATE_USER_KEYS = frozenset(
    {
        "id", "name", "chat", "department", "email", "primaryContactInfo", "addresses", "title",
        "username", "preferredName", "manager", "images", "version", "profileSkills", "locations",
        "groups", "state", "acdAutoAnswer", "certifications", "biography", "employerInfo",
        "selfUri",
    }
)  # fmt: skip
CREATE_USER_KEYS = frozenset(
    {"name", "department", "email", "addresses", "title", "password", "divisionId", "state"}
)
SEARCH_KEYS = frozenset(
    {
        "sortOrder", "sortBy", "pageSize", "pageNumber", "sort", "expand", "query",
        "integrationPresenceSource", "enforcePermissions",
    }
)  # fmt: skip
MEDIA_KEYS = ("call", "callback", "email", "message", "chat", "socialExpression", "video")
MEDIA_OF = {"voice": "call", "callback": "callback", "email": "email", "message": "message",
            "chat": "chat", "video": "video"}  # fmt: skip

SEARCH_FIELDS: dict[str, Any] = {
    "id": lambda u: [u.id],
    "name": lambda u: [u.name],
    "email": lambda u: [u.email],
    "username": lambda u: [u.username],
    "department": lambda u: [u.department] if u.department else [],
    "title": lambda u: [u.title] if u.title else [],
    "state": lambda u: [u.state],
    "manager": lambda u: [u.manager_id] if u.manager_id else [],
    "manager.id": lambda u: [u.manager_id] if u.manager_id else [],
    "preferredName": lambda u: [u.preferred_name] if u.preferred_name else [],
    "division.id": lambda u: [u.division_id],
    # The real search field name for the employee id is UNCONFIRMED; both spellings work.
    "employerInfo.employeeId": lambda u: [e] if (e := u.employer_info.get("employeeId")) else [],
    "employeeId": lambda u: [e] if (e := u.employer_info.get("employeeId")) else [],
}
SORT_FIELDS = ("name", "email", "id", "username", "department", "title", "state")


def expand_arg(values: list[str]) -> set[str]:
    unknown = sorted(set(values) - EXPAND_OPTIONS)
    if unknown:
        raise ApiError.bad_request(
            f"Invalid expand value(s): {', '.join(unknown)}", "invalid.value"
        )
    return set(values)


def render(
    state: SandboxState, user: User, expand: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    org = state.org
    body = user.to_json(org.divisions[user.division_id])
    if "conversationSummary" in expand and not _summary_missing(state, user.id):
        body["conversationSummary"] = conversation_summary(org, user.id)
    if "routingStatus" in expand:
        busy = user.id in org.active_conversation
        status = "INTERACTING" if busy else "IDLE" if user.state == "active" else "OFF_QUEUE"
        body["routingStatus"] = {"userId": user.id, "status": status}
    # Expands are best effort (PYDOCS get_user): the drop_expands fault leaves some out.
    footprint = expand - set(state.faults.drop_expands)
    if "skills" in footprint:
        held = org.user_skills.get(user.id, {})
        body["skills"] = [org.skills[s].assigned(user.id, p) for s, p in sorted(held.items())]
    if "languages" in footprint:
        held = org.user_languages.get(user.id, {})
        body["languages"] = [
            org.languages[lang].assigned(user.id, p) for lang, p in sorted(held.items())
        ]
    if "groups" in footprint:
        body["groups"] = [
            {"id": g.id, "name": g.name, "selfUri": f"/api/v2/groups/{g.id}"}
            for g in org.user_groups(user.id)
        ]
    return body


def _summary_missing(state: SandboxState, user_id: str) -> bool:
    """Expands are best effort (PYDOCS ``get_user``): the ``conversation_summary_missing`` fault
    leaves ``conversationSummary`` out for the users it names (``*``: everyone)."""
    missing = state.faults.conversation_summary_missing
    dropped = "conversationSummary" in state.faults.drop_expands
    return dropped or "*" in missing or user_id in missing


def conversation_summary(org: Org, user_id: str) -> dict[str, Any]:
    """``UserConversationSummary`` (genesys-api.md 2.1): one media entry per kind."""
    active: dict[str, int] = {}
    conversation_id = org.active_conversation.get(user_id)
    if conversation_id is not None:
        conversation = org.conversations[conversation_id]
        media = conversation.participants[0].sessions[0].media_type
        active[MEDIA_OF.get(media, "call")] = 1
    summary: dict[str, Any] = {"userId": user_id}
    for key in MEDIA_KEYS:
        summary[key] = {
            "contactCenter": {"active": active.get(key, 0), "acw": 0},
            "enterprise": {"active": 0, "acw": 0},
        }
    return summary


def lookup(org: Org, user_id: str, *, deleted: bool = False) -> User:
    """The user in a default read (active or inactive), or with ``deleted`` only a deleted one."""
    user = org.users.get(user_id)
    if user is None or (user.state == "deleted") != deleted:
        raise ApiError.not_found("user", user_id)
    return user


@bp.get("/api/v2/users")
def list_users() -> Response:
    """genesys-api.md 2.2: ``state`` active (default) | inactive | deleted | any; ``id`` bulk."""
    state = sandbox()
    size = int_arg("pageSize", 25, maximum=MAX_LIST_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    wanted = choice_arg("state", "active", ("active", "inactive", "deleted", "any"))
    order = choice_arg("sortOrder", "ascending", ("ascending", "descending", "ASC", "DESC"))
    expand = expand_arg(multi("expand"))
    ids = multi("id")
    if ids and multi("jabberId"):
        raise ApiError.bad_request("id and jabberId cannot be used together")
    with state.lock:
        users = state.org.sorted_users()
        if ids:
            wanted_ids = set(ids)
            users = [u for u in users if u.id in wanted_ids]
        if wanted != "any":
            users = [u for u in users if u.state == wanted]
        if order in ("descending", "DESC"):
            users = users[::-1]
        page = [render(state, u, expand) for u in page_of(users, size, number)]
    listing = entity_listing(
        page, len(users), size, number, path="/api/v2/users", query=f"&state={wanted}"
    )
    return json_response(listing)


@bp.get("/api/v2/users/me")
def get_me() -> Response:
    """The user a session belongs to (``UsersApi.get_users_me``). A client-credentials token has
    no user behind it: 400 (UNCONFIRMED; docs/sandbox.md)."""
    state = sandbox()
    expand = expand_arg(multi("expand"))
    user_id = g.get("session_user_id")
    if user_id is None:
        raise ApiError.bad_request(
            "This request requires a user context. Client credentials cannot be used for "
            "requests to this resource.",
            "bad.request",
        )
    with state.lock:
        user = state.org.users.get(user_id)
        if user is None:
            raise ApiError.not_found("user", user_id)
        return json_response(render(state, user, expand))


@bp.get("/api/v2/users/<user_id>")
def get_user(user_id: str) -> Response:
    """genesys-api.md 2.1: a deleted user is a 404 unless ``state=deleted``; inactive users are read."""
    state = sandbox()
    wanted = choice_arg("state", "active", ("active", "deleted"))
    expand = expand_arg(multi("expand"))
    with state.lock:
        user = lookup(state.org, user_id, deleted=wanted == "deleted")
        return json_response(render(state, user, expand))


@bp.post("/api/v2/users")
def create_user() -> Response:
    """genesys-api.md 2.5: 200 (not 201); a duplicate email, deleted users included, is a 409."""
    require("directory:user:add")
    state = sandbox()
    body = json_object(CREATE_USER_KEYS, "CreateUser")
    name, email = body.get("name"), body.get("email")
    if not isinstance(name, str) or not name.strip():
        raise ApiError.bad_request("name is required", "invalid.value")
    if not isinstance(email, str) or "@" not in email:
        raise ApiError.bad_request(
            "email is required and must be an email address", "invalid.value"
        )
    # "If not specified, state will be Active if invites are sent, otherwise Inactive" (2.5):
    # the sandbox sends no invites, so a create without a state makes an inactive user.
    new_state = body.get("state", "inactive")
    if new_state not in ("active", "inactive"):
        raise ApiError.bad_request("state must be active or inactive on create", "invalid.value")
    with state.lock:
        org = state.org
        division_id = body.get("divisionId") or org.home_division_id
        if division_id not in org.divisions:
            raise ApiError.bad_request(f"Unknown divisionId {division_id}", "invalid.value")
        if org.user_by_email(email) is not None:
            raise ApiError(
                409, f"A user with the email {email} already exists.", "general.conflict"
            )
        now = state.clock()
        user = User(
            id=org.new_id(),
            name=name.strip(),
            email=email,
            username=email,
            division_id=division_id,
            state=new_state,
            version=1,
            department=_opt_str(body, "department"),
            title=_opt_str(body, "title"),
            addresses=_addresses(body),
            date_modified=now,
        )
        org.add_user(user, now)
        return json_response(render(state, user))


@bp.patch("/api/v2/users/<user_id>")
def patch_user(user_id: str) -> Response:
    """genesys-api.md 2.3: ``version`` required (stale -> 409); a ``state`` change travels alone
    with its version; ``state`` active on a deleted user restores it (2.4)."""
    require(*EDIT)
    state = sandbox()
    body = json_object(UPDATE_USER_KEYS, "UpdateUser")
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ApiError.bad_request("version is required and must be an integer", "invalid.value")
    if "state" in body and set(body) != {"state", "version"}:
        raise ApiError.bad_request(
            "When state is specified it is the only modifiable field: send state and version only."
        )
    if "id" in body and body["id"] != user_id:
        raise ApiError.bad_request("id in the body does not match the path", "invalid.value")
    with state.lock:
        org, now = state.org, state.clock()
        user = org.users.get(user_id)
        if user is None or (user.state == "deleted" and "state" not in body):
            raise ApiError.not_found("user", user_id)
        if version != user.version:
            raise ApiError(
                409,
                f"The version supplied ({version}) does not match the current version of the "
                f"user ({user.version}).",
                VERSION_MISMATCH,
                message_params={"version": str(user.version)},
            )
        if "state" in body:
            _change_state(state, user, body["state"], now)
        else:
            _update_fields(org, user, body, now)
        return json_response(render(state, user))


def _change_state(state: SandboxState, user: User, new_state: Any, now: float) -> None:
    if new_state not in ("active", "inactive"):
        raise ApiError.bad_request(
            "state must be active or inactive (delete a user with DELETE)", "invalid.value"
        )
    if user.gdpr_deleted:
        # "Users deleted through the GDPR API cannot be undeleted" (genesys-api.md 2.4); the
        # status and code of the refusal are UNCONFIRMED: a 400 naming why.
        raise ApiError.bad_request(
            f"User {user.id} was deleted through the GDPR API and cannot be restored.",
            "bad.request",
        )
    if user.state == "deleted":
        # An undelete "restores the user to active status" (genesys-api.md 2.4): the stricter
        # reading is that it does so whatever state was asked, so restoring to inactive takes
        # a second PATCH, and the user is active (can sign in) in between. It gives back no
        # role and leaves the user in Home (HELP "what happens when I restore").
        state.org.set_state(user, "active", now)
        return
    if new_state == user.state:
        return
    if new_state == "inactive" and user.state == "active":
        _refuse_if_busy(state, user, "deactivated")
    if new_state == "inactive":
        _strip_footprint(state, user)
    # Reactivation gives back no role: only group-granted roles are there (genesys-api.md 2.4).
    state.org.set_state(user, new_state, now)


def _strip_footprint(state: SandboxState, user: User) -> None:
    """What deactivation and delete take away: every directly granted role (2.4) and, in the
    stricter reading of an UNCONFIRMED fact, routing skills and languages."""
    state.org.strip_direct_grants(user.id)
    if state.faults.strip_routing_on_deactivate:
        state.org.strip_routing(user.id)


def _refuse_if_busy(state: SandboxState, user: User, verb: str) -> None:
    """409 while the user has an active conversation: the stricter reading of an UNCONFIRMED
    fact, switchable with the ``block_deactivation_on_active_conversation`` fault."""
    if (
        state.faults.block_deactivation_on_active_conversation
        and user.id in state.org.active_conversation
    ):
        raise ApiError(
            409,
            f"The user has an active conversation and cannot be {verb}.",
            ACTIVE_CONVERSATION,
            entity_id=user.id,
        )


def _update_fields(org: Org, user: User, body: dict[str, Any], now: float) -> None:
    renamed = _set_name(user, body)
    changed = renamed
    for update in (_set_email, _set_plain, _set_manager, _set_employer_info, _set_addresses):
        changed |= update(org, user, body)
    # Other UpdateUser fields (images, skills, locations, ...) are accepted and not kept.
    if changed:
        org.touched(user, now, renamed=renamed)


# Each ``_set_*`` applies its part of an UpdateUser body and says whether the user changed.
def _set_name(user: User, body: dict[str, Any]) -> bool:
    if "name" not in body:
        return False
    name = body["name"]
    if not isinstance(name, str) or not name.strip():
        raise ApiError.bad_request("name must be a non-empty string", "invalid.value")
    changed = name.strip() != user.name
    user.name = name.strip()
    return changed


def _set_email(org: Org, user: User, body: dict[str, Any]) -> bool:
    if "email" not in body or body["email"] == user.email:
        return False
    email = body["email"]
    if not isinstance(email, str) or "@" not in email:
        raise ApiError.bad_request("email must be an email address", "invalid.value")
    holder = org.user_by_email(email)
    if holder is not None and holder.id != user.id:
        raise ApiError(409, f"A user with the email {email} already exists.", "general.conflict")
    org.change_email(user, email)
    return True


def _set_plain(_org: Org, user: User, body: dict[str, Any]) -> bool:
    changed = False
    for key, attr in (("department", "department"), ("title", "title"),
                      ("username", "username"), ("preferredName", "preferred_name")):  # fmt: skip
        if key in body:
            value = _opt_str(body, key)
            if key == "username" and not value:
                raise ApiError.bad_request("username cannot be empty", "invalid.value")
            changed |= getattr(user, attr) != value
            setattr(user, attr, value)
    return changed


def _set_manager(org: Org, user: User, body: dict[str, Any]) -> bool:
    if "manager" not in body:
        return False
    manager = body["manager"]
    if manager in (None, ""):
        manager = None
    elif not isinstance(manager, str) or manager not in org.users or manager == user.id:
        raise ApiError.bad_request("manager must be the id of another user", "invalid.value")
    changed: bool = user.manager_id != manager
    user.manager_id = manager
    return changed


def _set_employer_info(_org: Org, user: User, body: dict[str, Any]) -> bool:
    if "employerInfo" not in body:
        return False
    info = body["employerInfo"]
    if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
        raise ApiError.bad_request("employerInfo must be an object of strings", "invalid.value")
    changed = user.employer_info != info
    user.employer_info = dict(info)
    return changed


def _set_addresses(_org: Org, user: User, body: dict[str, Any]) -> bool:
    if "addresses" not in body:
        return False
    addresses = _addresses(body)
    changed = user.addresses != addresses
    user.addresses = addresses
    return changed


@bp.delete("/api/v2/users/<user_id>")
def delete_user(user_id: str) -> Response:
    """genesys-api.md 2.4: a soft delete to state ``deleted``; 200 with ``{}``."""
    require(*DELETE)
    state = sandbox()
    with state.lock:
        org = state.org
        user = lookup(org, user_id)
        _refuse_if_busy(state, user, "deleted")
        _strip_footprint(state, user)
        # "A user in a custom division was moved to Home at deletion" (genesys-api.md 2.4).
        user.division_id = org.home_division_id
        org.set_state(user, "deleted", state.clock())
        faults = state.faults
        if faults.purge_history_on_delete:
            days = faults.purge_history_older_than_days
            org.purge_history(user.id, state.clock() - days * 86400.0 if days else None)
    return json_response({})


@bp.post("/api/v2/users/search")
def search_users() -> Response:
    """genesys-api.md 2.6. Without a ``state`` criterion only active users are found (stricter
    reading of an UNCONFIRMED fact); deleted users only when a state criterion asks for them."""
    require("directory:user:view")
    state = sandbox()
    body = json_object(SEARCH_KEYS, "UserSearchRequest")
    size, number = paging(body, MAX_SEARCH_PAGE_SIZE)
    descending = sort_order(body)
    sort_by = body.get("sortBy") or "name"
    if sort_by not in SORT_FIELDS:
        raise ApiError.bad_request(
            f"sortBy must be one of {', '.join(SORT_FIELDS)}", "invalid.value"
        )
    expand_list = body.get("expand") or []
    if not isinstance(expand_list, list) or not all(isinstance(e, str) for e in expand_list):
        raise ApiError.bad_request("expand must be a list of strings", "invalid.value")
    expand = expand_arg(expand_list)
    query = body.get("query")
    match = compile_query(query, SEARCH_FIELDS)
    state_criteria = [c for c in walk(query or []) if "state" in (c.get("fields") or [])]
    asks_deleted = any("deleted" in map(str.casefold, criterion_values(c)) for c in state_criteria)
    with state.lock:
        found = []
        for user in state.org.searchable_users(state.clock()):
            if not state_criteria and user.state != "active":
                continue
            if user.state == "deleted" and not asks_deleted:
                continue
            if match(user):
                found.append(user)
        if sort_by != "name":
            found.sort(key=lambda u: (str(SEARCH_FIELDS[sort_by](u)[:1]).casefold(), u.id))
        if descending:
            found.reverse()
        results = [render(state, u, expand) for u in page_of(found, size, number)]
    return json_response(search_response(results, len(found), size, number, "users"))


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError.bad_request(f"{key} must be a string", "invalid.value")
    return value or None


def _addresses(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body.get("addresses", [])
    if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
        raise ApiError.bad_request("addresses must be a list of contacts", "invalid.value")
    return [dict(a) for a in value]
