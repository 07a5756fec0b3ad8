"""Reading SCIM requests and shaping SCIM responses: bodies, paging, projection, ETags.

* Bodies: ``application/scim+json`` and ``application/json`` (with or without a charset) are
  accepted, since both IdPs' tooling sends either (idp-behaviour.md 1.0, 2.0); anything else is
  415. Over 1 MiB is 413 (``MAX_CONTENT_LENGTH``); malformed JSON is 400 ``invalidSyntax``.
* Paging (RFC 7644 §3.4.2.4): ``startIndex`` below 1 counts as 1, a negative ``count`` as 0.
* ``attributes`` / ``excludedAttributes`` (§3.4.2.5), applied by the catalogue's marshmallow dump
  (``schemas.dump_resource``); ``id`` and ``schemas`` are always returned.
* ``If-Match`` (§3.14) carries the weak ETag ``W/"<version>"``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Response, request

from scim_bridge.scim import definitions
from scim_bridge.scim.errors import (
    InvalidSyntax,
    InvalidValue,
    PayloadTooLarge,
    PreconditionFailed,
    UnsupportedMediaType,
    scim_response,
)
from scim_bridge.scim.schemas import dump_resource

MAX_BODY_BYTES = 1024 * 1024
# SCIM resources nest 4 deep at most (an extension's complex multi-valued attribute); 32 leaves
# room for anything an IdP sends and none for a recursion bomb.
MAX_JSON_DEPTH = 32
DEFAULT_COUNT = 100
MAX_COUNT = 100
JSON_MEDIA_TYPES = frozenset({"application/scim+json", "application/json"})
_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_body() -> Any:
    mimetype = request.mimetype
    if mimetype and mimetype not in JSON_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {mimetype!r} is not accepted; send application/scim+json "
            "or application/json."
        )
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise PayloadTooLarge("The request body is larger than the 1 MiB the service accepts.")
    data = request.get_data(cache=True)
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge("The request body is larger than the 1 MiB the service accepts.")
    if not data.strip():
        raise InvalidSyntax("The request body is empty; a JSON object was expected.")
    try:
        parsed = json.loads(data.decode("utf-8-sig"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidSyntax("The request body is not valid JSON.") from None
    if nesting_depth(parsed) > MAX_JSON_DEPTH:
        # Everything after parsing recurses over the body (quirks, validation, PATCH): a body
        # nested ~500 deep was a RecursionError, a 500.
        raise InvalidSyntax(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    return parsed


def nesting_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0); iterative, so a hostile
    depth cannot exhaust the stack here."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise InvalidValue(f"{name} must be an integer, got {raw[:40]!r}.") from None


def page_params() -> tuple[int, int]:
    start = max(1, min(_int_arg("startIndex", 1), 10**9))
    count = max(0, min(_int_arg("count", DEFAULT_COUNT), MAX_COUNT))
    return start, count


@dataclasses.dataclass(frozen=True)
class Query:
    """A list request's parameters: from the query string (GET) or a SearchRequest (POST .search)."""

    filter: str | None
    start: int
    count: int
    attributes: list[str]
    excluded: list[str]


def query_from_args() -> Query:
    start, count = page_params()
    return Query(
        request.args.get("filter"),
        start,
        count,
        names(request.args.get("attributes")),
        names(request.args.get("excludedAttributes")),
    )


def query_from_body() -> Query:
    """RFC 7644 §3.4.3 SearchRequest."""
    body = json_body()
    if not isinstance(body, Mapping):
        raise InvalidSyntax("A SearchRequest must be a JSON object.")

    def integer(name: str, default: int) -> int:
        value = body.get(name, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValue(f"{name} must be an integer.")
        return value

    def name_list(name: str) -> list[str]:
        value = body.get(name) or []
        if isinstance(value, str):
            return names(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidValue(f"{name} must be a list of attribute names.")
        return list(value)

    text = body.get("filter")
    if text is not None and not isinstance(text, str):
        raise InvalidValue("filter must be a string.")
    return Query(
        text,
        max(1, min(integer("startIndex", 1), 10**9)),
        max(0, min(integer("count", DEFAULT_COUNT), MAX_COUNT)),
        name_list("attributes"),
        name_list("excludedAttributes"),
    )


def list_response(resources: Sequence[Mapping[str, Any]], total: int, start: int) -> dict[str, Any]:
    return {
        "schemas": [definitions.LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": list(resources),
    }


def names(text: str | None) -> list[str]:
    if not text:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def project(
    resource: Mapping[str, Any], attributes: Sequence[str], excluded: Sequence[str]
) -> dict[str, Any]:
    """The resource as answered: dumped through the catalogue's marshmallow schema, with
    ``attributes`` / ``excludedAttributes`` applied (``schemas.dump_resource``)."""
    resource_type = str(resource.get("meta", {}).get("resourceType") or "User")
    return dump_resource(resource, resource_type, attributes, excluded)


def if_match() -> int | None:
    """The version ``If-Match`` names; None when absent or ``*``. Unparseable: 412."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() in ("", "*"):
        return None
    match = _ETAG.match(header.split(",")[0])
    if match is None:
        raise PreconditionFailed(f"If-Match {header[:60]!r} is not a version this service issued.")
    return int(match.group(1))


def not_modified(etag: str) -> bool:
    """A GET whose ``If-None-Match`` names ``etag`` or ``*`` (RFC 7644 §3.14; RFC 9110 §13.1.2:
    a weak comparison, so ``"5"`` matches ``W/"5"``)."""
    header = request.headers.get("If-None-Match")
    if request.method not in ("GET", "HEAD") or header is None:
        return False
    if header.strip() == "*":
        return True
    wanted = _ETAG.match(etag)
    listed = (_ETAG.match(part) for part in header.split(","))
    return wanted is not None and any(m is not None and m[1] == wanted[1] for m in listed)


def respond(resource: Mapping[str, Any], *, etag: str, status: int = 200) -> Response:
    """A resource answer: its ``ETag``, a ``Location`` on 201 (RFC 7644 §3.3), and the
    request's ``attributes`` / ``excludedAttributes`` applied (§3.4.2.5); 304 for a GET whose
    ``If-None-Match`` names the current version."""
    headers = {"ETag": etag}
    if status == 200 and not_modified(etag):
        return Response(status=304, headers=headers)
    if status == 201:
        headers["Location"] = resource["meta"]["location"]
    shaped = project(
        resource,
        names(request.args.get("attributes")),
        names(request.args.get("excludedAttributes")),
    )
    return scim_response(shaped, status, headers)
