"""Deprovisioning jobs for operators (under the guarded ``/admin`` blueprint):

``GET /admin/jobs?state=&user=``, ``GET /admin/jobs/{id}`` (steps, evidence, audit events),
``POST /admin/jobs/{id}/approve``, ``POST /admin/jobs/{id}/retry``,
``GET /admin/tombstones/{userId}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, jsonify, request

from scim_bridge.admin import auth, register_json_errors
from scim_bridge.audit import AuditLog
from scim_bridge.audit.throttle import FailureThrottle
from scim_bridge.config import Settings
from scim_bridge.deprovision import jobs, operators

MAX_LIMIT = 500
MAX_OFFSET = 10**9  # well inside a 64-bit OFFSET on both databases


def blueprint(
    engine: sa.Engine, audit: AuditLog, *, wake: Callable[[], None] | None = None
) -> Blueprint:
    bp = Blueprint("admin_jobs", __name__)

    def error(status: int, message: str) -> Response:
        response = jsonify(error=message)
        response.status_code = status
        return response

    @bp.get("/jobs")
    def list_jobs() -> Response:
        try:
            limit = int(request.args.get("limit", 100))
            offset = int(request.args.get("offset", 0))
        except ValueError:
            return error(400, "limit and offset are integers")
        if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
            return error(400, f"limit is 1 to {MAX_LIMIT}, offset 0 to {MAX_OFFSET}")
        rows = jobs.listing(
            engine,
            state=request.args.get("state") or None,
            user_id=request.args.get("user") or None,
            limit=limit,
            offset=offset,
        )
        return jsonify(jobs=[operators.describe(job) for job in rows], limit=limit, offset=offset)

    @bp.get("/jobs/<job_id>")
    def show_job(job_id: str) -> Response:
        job = jobs.find(engine, job_id)
        if job is None:
            return error(404, f"no job {job_id}")
        return jsonify(operators.details(engine, audit, job))

    def operate(job_id: str, act: Callable[..., jobs.JobRow]) -> Response:
        body = request.get_json(silent=True) or {}
        actor = str(body.get("by") or "admin")[:100]
        try:
            job = act(engine, audit, job_id, actor=f"admin:{actor}", now=time.time())
        except LookupError as e:
            return error(404, str(e))
        except operators.NotAllowed as e:
            return error(409, str(e))
        if wake is not None:
            wake()
        return jsonify(operators.describe(job))

    @bp.post("/jobs/<job_id>/approve")
    def approve(job_id: str) -> Response:
        return operate(job_id, operators.approve)

    @bp.post("/jobs/<job_id>/retry")
    def retry(job_id: str) -> Response:
        return operate(job_id, operators.retry)

    @bp.get("/tombstones/<user_id>")
    def tombstone(user_id: str) -> Response:
        stone = operators.tombstone(engine, user_id)
        if stone is None:
            return error(404, f"no tombstone for {user_id}")
        return jsonify(stone)

    return bp


def init_app(
    app: Flask,
    *,
    engine: sa.Engine,
    audit: AuditLog,
    settings: Settings,
    wake: Callable[[], None] | None = None,
    throttle: FailureThrottle | None = None,
) -> None:
    """Register the routes under ``/admin``, behind the admin bearer token (``admin/auth.py``)."""
    bp = Blueprint("admin_deprovisioning", __name__, url_prefix="/admin")
    auth.protect(bp, token=settings.admin_token, audit=audit, throttle=throttle)
    register_json_errors(bp)
    bp.register_blueprint(blueprint(engine, audit, wake=wake))
    app.register_blueprint(bp)
