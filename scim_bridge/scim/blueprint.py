"""The ``/scim/v2`` blueprint and its wiring (called once, from ``create_app``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, Flask, Response, request

from scim_bridge.audit import Tag
from scim_bridge.directory import limits
from scim_bridge.scim import discovery, errors, http, routes_groups, routes_users
from scim_bridge.scim.auth import authenticate
from scim_bridge.scim.context import KEY, ScimContext, context
from scim_bridge.scim.errors import InvalidFilter, scim_response
from scim_bridge.scim.http import MAX_BODY_BYTES

PREFIX = "/scim/v2"


def _require_token() -> None:
    ctx = context()

    def failed(reason: str) -> None:
        if ctx.throttle.should_record(reason):
            ctx.audit.record(
                Tag.SCIM_AUTH_FAILED,
                actor="anonymous",
                outcome=reason,
                detail={"path": request.path, "method": request.method},
            )

    authenticate(ctx.tokens.identify, failed)
    # Bounded from here on: a deadline across the request's Genesys calls, and their number.
    limits.begin(ctx.request_deadline_s, ctx.max_genesys_calls)


def _no_body_no_type(response: Response) -> Response:
    """A 204 or 304 has no body, so no Content-Type (Flask gives every response one)."""
    if response.status_code in (204, 304):
        del response.headers["Content-Type"]
    return response


def _end_limits(_exc: BaseException | None) -> None:
    limits.end()


def _search_all() -> Response:
    """POST /.search (RFC 7644 §3.4.3): Users, then Groups, paged as one list. A filter that
    names attributes only one of them has answers from that one alone."""
    params = http.query_from_body()
    searches = (routes_users.search, routes_groups.search)
    totals: list[int] = []
    first_error: InvalidFilter | None = None
    for search in searches:
        try:
            totals.append(
                int(search(dataclasses.replace(params, start=1, count=0))["totalResults"])
            )
        except InvalidFilter as e:
            first_error = first_error or e
            totals.append(-1)
    if all(t < 0 for t in totals) and first_error is not None:
        raise first_error
    resources: list[dict[str, Any]] = []
    offset = params.start - 1  # into the concatenation
    for search, total in zip(searches, totals, strict=True):
        if total <= 0:
            continue
        if offset >= total:
            offset -= total
            continue
        wanted = params.count - len(resources)
        if wanted <= 0:
            break
        page = search(dataclasses.replace(params, start=offset + 1, count=wanted))
        resources.extend(page["Resources"])
        offset = 0
    return scim_response(
        http.list_response(resources, sum(t for t in totals if t > 0), params.start)
    )


_UNSUPPORTED = {
    "Me": "The /Me endpoint is not supported (RFC 7644 §3.11): address the user by id.",
    "Bulk": "Bulk operations are not supported (RFC 7644 §3.7; bulk.supported is false).",
}


def _not_implemented(name: str, rest: str = "") -> Response:
    """/Me and /Bulk: 501, as RFC 7644 §3.11 and §3.12 ask of an unsupported endpoint."""
    del rest
    raise errors.NotImplementedHere(_UNSUPPORTED[name])


def init_app(app: Flask, scim: ScimContext) -> None:
    app.extensions["scim_bridge"].extra[KEY] = scim
    # Werkzeug refuses a larger declared Content-Length with 413 (answered as SCIM JSON by the
    # error handlers). A chunked body has none: Werkzeug cuts it at this length instead, so the
    # limit is one byte over ours and ``http.json_body`` answers 413 for what reached it (a cut
    # body would otherwise read as malformed JSON, a 400).
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES + 1
    bp = Blueprint("scim", __name__, url_prefix=PREFIX)
    bp.before_request(_require_token)
    bp.after_request(_no_body_no_type)
    bp.teardown_request(_end_limits)
    discovery.register(bp)
    bp.add_url_rule("/.search", "search_all", _search_all, methods=["POST"])
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    for name in _UNSUPPORTED:
        for rule in (f"/{name}", f"/{name}/<path:rest>"):
            bp.add_url_rule(
                rule,
                f"unsupported_{rule}",
                _not_implemented,
                methods=methods,
                defaults={"name": name},
            )
    routes_users.register(bp)
    routes_groups.register(bp)
    errors.register(app, bp)
    app.register_blueprint(bp)
