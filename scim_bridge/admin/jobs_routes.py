"""Deprovisioning jobs for operators (under the guarded ``/admin`` blueprint):

``GET /admin/jobs?state=&user=``, ``GET /admin/jobs/{id}`` (steps, evidence, audit events),
``POST /admin/jobs/{id}/approve`` (``{"by", "accept": [ids], "reason"}``: a held history
mismatch is approved by accepting every missing conversation by id, with a reason, ``by``
naming a live operator),
``POST /admin/jobs/{id}/retry``, ``POST /admin/jobs/{id}/cut-access`` (``{"by", "reason"}``, the
reason required), ``GET /admin/tombstones/{userId}``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, abort, jsonify, request

from scim_bridge.admin import auth, register_json_errors
from scim_bridge.audit import AuditLog
from scim_bridge.audit.throttle import FailureThrottle
from scim_bridge.config import Settings
from scim_bridge.console.operators import OperatorStore
from scim_bridge.deprovision import jobs, operators
from scim_bridge.deprovision.record import FINISHED_STATES, OPEN_STATES

MAX_LIMIT = 500
MAX_OFFSET = 10**9  # well inside a 64-bit OFFSET on both databases
JOB_STATES = OPEN_STATES + FINISHED_STATES


def blueprint(
    engine: sa.Engine, audit: AuditLog, *, wake: Callable[[], None] | None = None
) -> Blueprint:
    bp = Blueprint("admin_jobs", __name__)
    api = _JobsApi(engine, audit, wake)
    bp.get("/jobs")(api.list_jobs)
    bp.get("/jobs/<job_id>")(api.show_job)
    bp.post("/jobs/<job_id>/approve")(api.approve)
    bp.post("/jobs/<job_id>/retry")(api.retry)
    bp.post("/jobs/<job_id>/cut-access")(api.cut_access)
    bp.get("/tombstones/<user_id>")(api.tombstone)
    return bp


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _body() -> dict[str, Any]:
    """The request's JSON object; an absent or unreadable body is ``{}`` (as before), any other
    JSON value (``true``, a list) is the client's error."""
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        abort(_error(400, "the body is a JSON object"))
    return body


class _JobsApi:
    def __init__(self, engine: sa.Engine, audit: AuditLog, wake: Callable[[], None] | None) -> None:
        self.engine = engine
        self.audit = audit
        self.wake = wake

    def list_jobs(self) -> Response:
        try:
            limit = int(request.args.get("limit", 100))
            offset = int(request.args.get("offset", 0))
        except ValueError:
            return _error(400, "limit and offset are integers")
        if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
            return _error(400, f"limit is 1 to {MAX_LIMIT}, offset 0 to {MAX_OFFSET}")
        state = request.args.get("state") or None
        if state is not None and state not in JOB_STATES:
            return _error(400, f"unknown state {state!r}: one of {', '.join(JOB_STATES)}")
        rows = jobs.listing(
            self.engine,
            state=state,
            user_id=request.args.get("user") or None,
            limit=limit,
            offset=offset,
        )
        return jsonify(jobs=[operators.describe(job) for job in rows], limit=limit, offset=offset)

    def show_job(self, job_id: str) -> Response:
        job = jobs.find(self.engine, job_id)
        if job is None:
            return _error(404, f"no job {job_id}")
        return jsonify(operators.details(self.engine, self.audit, job))

    def approve(self, job_id: str) -> Response:
        body = _body()
        accept = body.get("accept") or []
        if not isinstance(accept, list) or not all(isinstance(i, str) for i in accept):
            return _error(400, "accept is a list of conversation ids")
        reason = str(body.get("reason") or "")[:500]
        if accept and not OperatorStore(self.engine).live(str(body.get("by") or "")):
            # Accepting lost history is the most sensitive thing the bridge does: a person
            # answers for it here as in the console and the CLI, not the shared token alone.
            return _error(
                400,
                "accepting missing conversations needs 'by' naming a live operator "
                "(scim-bridge operators list)",
            )
        return self._operate(
            job_id,
            functools.partial(operators.approve, accept=frozenset(accept), reason=reason),
        )

    def cut_access(self, job_id: str) -> Response:
        body = _body()
        reason = " ".join(str(body.get("reason") or "").split())[:500]
        if not reason:
            return _error(400, "cutting access needs a reason")
        return self._operate(job_id, functools.partial(operators.cut_access, reason=reason))

    def retry(self, job_id: str) -> Response:
        body = _body()
        reason = " ".join(str(body.get("reason") or "").split())[:500]
        return self._operate(job_id, functools.partial(operators.retry, reason=reason))

    def tombstone(self, user_id: str) -> Response:
        stone = operators.tombstone(self.engine, user_id)
        if stone is None:
            return _error(404, f"no tombstone for {user_id}")
        return jsonify(stone)

    def _operate(self, job_id: str, act: Callable[..., jobs.JobRow]) -> Response:
        body = _body()
        actor = str(body.get("by") or "admin")[:100]
        try:
            job = act(self.engine, self.audit, job_id, actor=f"admin:{actor}", now=time.time())
        except LookupError as e:
            return _error(404, str(e))
        except operators.NotAllowed as e:
            return _error(409, str(e))
        if self.wake is not None:
            self.wake()
        return jsonify(operators.describe(job))


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
