"""The ``/scim/v2`` blueprint and its wiring (called once, from ``create_app``)."""

from __future__ import annotations

from flask import Blueprint, Flask, request

from scim_bridge.audit import Tag
from scim_bridge.scim import discovery, errors, routes_groups, routes_users
from scim_bridge.scim.auth import authenticate
from scim_bridge.scim.context import KEY, ScimContext, context
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

    authenticate(ctx.tokens.verify, failed)


def init_app(app: Flask, scim: ScimContext) -> None:
    app.extensions["scim_bridge"].extra[KEY] = scim
    # Werkzeug refuses larger bodies with 413 (answered as SCIM JSON by the error handlers).
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    bp = Blueprint("scim", __name__, url_prefix=PREFIX)
    bp.before_request(_require_token)
    discovery.register(bp)
    routes_users.register(bp)
    routes_groups.register(bp)
    errors.register(app, bp)
    app.register_blueprint(bp)
