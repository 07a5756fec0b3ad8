"""Request parsing and JSON responses shared by the sandbox's views."""

from __future__ import annotations

import json
from typing import Any, TypeVar, cast

from flask import Response, current_app, g, request

from scim_bridge.sandbox.auth import Client, require_any
from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.state import SandboxState

T = TypeVar("T")


def sandbox() -> SandboxState:
    return cast(SandboxState, current_app.extensions["sandbox"])


def require(*permissions: str) -> None:
    """403 unless the calling token's client holds one of ``permissions`` (genesys-api.md 5.5)."""
    client = cast(Client | None, g.get("client"))
    if client is None:  # pragma: no cover - the before_request hook always sets it for /api
        raise ApiError(401, "No authentication bearer token specified in authorization header.")
    require_any(client, permissions)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, mimetype="application/json")


def empty(status: int = 204) -> Response:
    return Response(b"", status)


def json_body() -> Any:
    """The parsed JSON body: 415 for another content type, 400 when missing or malformed."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError.bad_request("A request body is required.")
    if request.mimetype != "application/json":
        raise ApiError(415, f"Unsupported media type: {request.mimetype or 'none'}")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ApiError.bad_request(f"The request body is not valid JSON: {e}") from None


def json_object(allowed: frozenset[str] | None = None, what: str = "body") -> dict[str, Any]:
    """A JSON object body; keys outside ``allowed`` are a 400 naming them (stricter reading)."""
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError.bad_request(f"The {what} must be a JSON object.")
    if allowed is not None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ApiError.bad_request(
                f"Unrecognized field(s) in {what}: {', '.join(unknown)}", "bad.request"
            )
    return cast(dict[str, Any], body)


def json_list(what: str = "body") -> list[Any]:
    body = json_body()
    if not isinstance(body, list):
        raise ApiError.bad_request(f"The {what} must be a JSON array.")
    return body


def multi(name: str) -> list[str]:
    """A list query parameter sent as ``a,b`` or as repeated keys (genesys-api.md 1.5)."""
    values: list[str] = []
    for raw in request.args.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def int_arg(name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError.bad_request(f"{name} must be an integer", "invalid.value") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ApiError.bad_request(f"{name} must be {bound}", "invalid.value")
    return value


def bool_arg(name: str, default: bool) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ApiError.bad_request(f"{name} must be true or false", "invalid.value")


def choice_arg(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = request.args.get(name) or default
    if raw not in choices:
        raise ApiError.bad_request(f"{name} must be one of {', '.join(choices)}", "invalid.value")
    return raw


def page_of(items: list[T], page_size: int, page_number: int) -> list[T]:
    start = (page_number - 1) * page_size
    return items[start : start + page_size]


def entity_listing(
    entities: list[Any], total: int, page_size: int, page_number: int, *, path: str, query: str = ""
) -> dict[str, Any]:
    """The ``*EntityListing`` envelope (genesys-api.md 2.2) around one page of ``entities``."""
    page_count = (total + page_size - 1) // page_size

    def uri(n: int) -> str:
        return f"{path}?pageSize={page_size}&pageNumber={n}{query}"

    listing: dict[str, Any] = {
        "entities": entities,
        "pageSize": page_size,
        "pageNumber": page_number,
        "total": total,
        "pageCount": page_count,
        "firstUri": uri(1),
        "selfUri": uri(page_number),
        "lastUri": uri(max(page_count, 1)),
    }
    if page_number < page_count:
        listing["nextUri"] = uri(page_number + 1)
    if page_number > 1:
        listing["previousUri"] = uri(page_number - 1)
    return listing
