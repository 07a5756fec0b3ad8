"""Routing skills and languages: the org's lists and each user's, with proficiency
(PYDOCS ``RoutingApi.md`` get_routing_skills / get_routing_languages, ``UsersApi.md``
get_user_routingskills, patch_user_routingskills_bulk, get_user_routinglanguages,
patch_user_routinglanguages_bulk; docs/sandbox.md "The footprint").
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.http import (
    choice_arg,
    entity_listing,
    int_arg,
    json_list,
    json_response,
    multi,
    page_of,
    require,
    sandbox,
)
from scim_bridge.sandbox.model import RoutingEntity
from scim_bridge.sandbox.org import Org
from scim_bridge.sandbox.routes.users import lookup

bp = Blueprint("skills", __name__)

MAX_PAGE_SIZE = 100  # UNCONFIRMED; TF pages these with 50
MAX_BULK = 50  # "Max limit 50 languages" (PYDOCS); TF chunks skills by 50 as well
SKILL_ASSIGN = ("routing:skill:assign",)
LANGUAGE_ASSIGN = ("routing:skill:assign", "routing:language:assign")


def _org_listing(entities: dict[str, RoutingEntity], kind: str) -> Response:
    size = int_arg("pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    ids = set(multi("id"))
    name = (request.args.get("name") or "").casefold()
    found = sorted(entities.values(), key=lambda e: (e.name.casefold(), e.id))
    if ids:
        found = [e for e in found if e.id in ids]
    if name:
        found = [e for e in found if e.name.casefold().startswith(name)]
    page = [e.to_json() for e in page_of(found, size, number)]
    return json_response(
        entity_listing(page, len(found), size, number, path=f"/api/v2/routing/{kind}")
    )


@bp.get("/api/v2/routing/skills")
def list_skills() -> Response:
    """``SkillEntityListing``; ``routing:skill:view``."""
    require("routing:skill:view")
    state = sandbox()
    with state.lock:
        return _org_listing(state.org.skills, "skills")


@bp.get("/api/v2/routing/languages")
def list_languages() -> Response:
    """``LanguageEntityListing``; no permission."""
    state = sandbox()
    with state.lock:
        return _org_listing(state.org.languages, "languages")


def _user_listing(
    org: Org, user_id: str, held: dict[str, float], entities: dict[str, RoutingEntity], path: str
) -> Response:
    size = int_arg("pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_arg("pageNumber", 1)
    order = choice_arg("sortOrder", "ascending", ("ascending", "descending", "ASC", "DESC"))
    rows = sorted(held.items(), key=lambda kv: (entities[kv[0]].name.casefold(), kv[0]))
    if order in ("descending", "DESC"):
        rows.reverse()
    page = [entities[e].assigned(user_id, p) for e, p in page_of(rows, size, number)]
    return json_response(
        entity_listing(page, len(rows), size, number, path=f"/api/v2/users/{user_id}/{path}")
    )


@bp.get("/api/v2/users/<user_id>/routingskills")
def user_skills(user_id: str) -> Response:
    """``UserSkillEntityListing``; no permission; a deleted user is a 404."""
    state = sandbox()
    with state.lock:
        org = state.org
        lookup(org, user_id)
        held = org.user_skills.get(user_id, {})
        return _user_listing(org, user_id, held, org.skills, "routingskills")


@bp.get("/api/v2/users/<user_id>/routinglanguages")
def user_languages(user_id: str) -> Response:
    """``UserLanguageEntityListing``; no permission; a deleted user is a 404."""
    state = sandbox()
    with state.lock:
        org = state.org
        lookup(org, user_id)
        held = org.user_languages.get(user_id, {})
        return _user_listing(org, user_id, held, org.languages, "routinglanguages")


def _proficiencies(what: str) -> list[tuple[str, float]]:
    """A bulk body ``[{id, proficiency}]``: 0.0 to 5.0, at most 50 entries."""
    body = json_list(f"list of {what}")
    if not body or len(body) > MAX_BULK:
        raise ApiError.bad_request(f"Between 1 and {MAX_BULK} {what} per request", "invalid.value")
    pairs: list[tuple[str, float]] = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ApiError.bad_request(f"each of the {what} needs an id", "invalid.value")
        unknown = set(item) - {"id", "proficiency", "skillUri", "languageUri", "selfUri"}
        if unknown:
            raise ApiError.bad_request(f"Unrecognized field(s): {', '.join(sorted(unknown))}")
        proficiency = item.get("proficiency")
        if (
            isinstance(proficiency, bool)
            or not isinstance(proficiency, int | float)
            or not 0 <= proficiency <= 5
        ):
            raise ApiError.bad_request("proficiency must be a number from 0.0 to 5.0")
        pairs.append((item["id"], float(proficiency)))
    return pairs


def _bulk(kind: str, permissions: tuple[str, ...], user_id: str) -> Response:
    require(*permissions)
    state = sandbox()
    pairs = _proficiencies(kind)
    with state.lock:
        org = state.org
        lookup(org, user_id)
        entities = org.skills if kind == "skills" else org.languages
        for entity_id, _ in pairs:
            if entity_id not in entities:
                raise ApiError.not_found(kind[:-1], entity_id)
        store = org.user_skills if kind == "skills" else org.user_languages
        held = store.setdefault(user_id, {})
        held.update(pairs)
        path = "routingskills" if kind == "skills" else "routinglanguages"
        return _user_listing(org, user_id, held, entities, path)


@bp.patch("/api/v2/users/<user_id>/routingskills/bulk")
def bulk_skills(user_id: str) -> Response:
    """Add or update skills (not a replace); all or nothing; the user's skills after it.
    ``routing:skill:assign``."""
    return _bulk("skills", SKILL_ASSIGN, user_id)


@bp.patch("/api/v2/users/<user_id>/routinglanguages/bulk")
def bulk_languages(user_id: str) -> Response:
    """As the skills bulk; ``routing:skill:assign`` or ``routing:language:assign``."""
    return _bulk("languages", LANGUAGE_ASSIGN, user_id)
