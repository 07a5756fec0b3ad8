"""Operator endpoints under ``/admin``, all behind the admin bearer token (``admin/auth.py``).

``init_app`` builds one ``/admin`` blueprint per app, guards it, and nests a blueprint per
concern in it (``audit_routes``; jobs and approvals add theirs the same way).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from scim_bridge.admin import audit_routes, auth
from scim_bridge.audit import AuditLog
from scim_bridge.audit.throttle import FailureThrottle
from scim_bridge.config import Settings

ADMIN_PREFIX = "/admin"

log = logging.getLogger(__name__)


def create_blueprint(
    *, audit: AuditLog, settings: Settings, throttle: FailureThrottle | None = None
) -> Blueprint:
    admin = Blueprint("admin", __name__, url_prefix=ADMIN_PREFIX)
    auth.protect(admin, token=settings.admin_token, audit=audit, throttle=throttle)
    admin.register_blueprint(audit_routes.blueprint(audit))
    register_json_errors(admin)
    return admin


def init_app(
    app: Flask, *, audit: AuditLog, settings: Settings, throttle: FailureThrottle | None = None
) -> None:
    app.register_blueprint(create_blueprint(audit=audit, settings=settings, throttle=throttle))


def json_error(status: int, error: str, detail: str) -> Response:
    response = jsonify(error=error, detail=detail)
    response.status_code = status
    return response


def http_error(exc: HTTPException) -> Response:
    """An HTTP error under /admin as JSON (``{"error", "detail"}``), Allow kept on a 405."""
    status = exc.code or 500
    response = json_error(status, (exc.name or "error").lower().replace(" ", "_"), exc.name or "")
    if status == 405:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
    return response


def is_admin_path() -> bool:
    return request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/")


def register_json_errors(blueprint: Blueprint) -> None:
    """Errors raised in an admin view: JSON, and a 500 names a correlation id, never a trace."""

    def handle(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.error(
            "unexpected error while serving an admin request",
            extra={"error_type": type(exc).__name__, "path": request.path},
        )
        cid = g.get("correlation_id") or "unknown"
        return json_error(500, "internal_error", f"quote correlation id {cid} to the operator")

    blueprint.register_error_handler(Exception, handle)
