"""Operator endpoints under ``/admin``, all behind the admin bearer token (``admin/auth.py``).

``init_app`` builds one ``/admin`` blueprint per app, guards it, and nests a blueprint per
concern in it (``audit_routes``; jobs and approvals add theirs the same way).
"""

from __future__ import annotations

from flask import Blueprint, Flask

from scim_bridge.admin import audit_routes, auth
from scim_bridge.audit import AuditLog
from scim_bridge.config import Settings


def create_blueprint(*, audit: AuditLog, settings: Settings) -> Blueprint:
    admin = Blueprint("admin", __name__, url_prefix="/admin")
    auth.protect(admin, token=settings.admin_token, audit=audit)
    admin.register_blueprint(audit_routes.blueprint(audit))
    return admin


def init_app(app: Flask, *, audit: AuditLog, settings: Settings) -> None:
    app.register_blueprint(create_blueprint(audit=audit, settings=settings))
