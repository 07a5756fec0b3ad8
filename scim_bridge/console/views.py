"""``/admin/ui``: the operator console, server-rendered (Flask + Jinja, no JavaScript needed).

Signing in takes a named operator's token (``scim-bridge operators create``) and sets a session
cookie: HttpOnly, SameSite=Strict, Secure when the request came over https, expiring with the
session (``operators.SESSION_S``). Every form carries the session's CSRF token and every POST
without the right one is refused (403). A request without a session is sent to the sign-in page.

Every action on a job (approve, retry, cancel) asks for a reason and a confirmation, and is
audited as ``operator:<name>`` with the reason (``operator_reason`` in the event's detail).
The JSON admin API (``/admin/jobs``, bearer ``SCIM_BRIDGE_ADMIN_TOKEN``) is unchanged.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.audit.log import parse_iso
from scim_bridge.config import Settings
from scim_bridge.console import queries
from scim_bridge.console.operators import OperatorStore, Session, actor
from scim_bridge.deprovision import evidence, jobs, operators
from scim_bridge.deprovision import model as m
from scim_bridge.deprovision.record import FINISHED_STATES, OPEN_STATES, Job

PREFIX = "/admin/ui"
COOKIE = "scimb_console"
SIGNIN_COOKIE = "scimb_console_signin"
MAX_REASON = 500
HERE = Path(__file__).parent

# What an operator may do to a job from the console, and when (the model refuses the rest).
ACTIONS: dict[str, tuple[str, str]] = {
    "approve": ("Approve", "Release the held job: it goes on from its step (past the breaker)."),
    "retry": ("Retry", "Run the job again now from its recorded step (not an approval)."),
    "cancel": ("Cancel", "Stop the job; nothing further is done in Genesys."),
}


def applicable(job: Job) -> list[str]:
    """The actions that apply to ``job`` in its state (as ``model.command`` allows them)."""
    found = []
    if job.state == "held":
        found.append("approve")
    if job.state in ("held", "waiting", "failed"):
        found.append("retry")
    if job.open:
        found.append("cancel")
    return found


def command(name: str, job: Job, operator: str, reason: str, now: float) -> m.Command:
    who = actor(operator)
    if name == "approve":
        return m.Approve(who)
    if name == "retry":
        return m.Retry(who)
    leased = job.lease_expires_at is not None and job.lease_expires_at >= now
    return m.Cancel(who, leased=leased, reason="operator")


@dataclasses.dataclass
class Parts:
    """What the pages read and drive; handed over by ``create_app``."""

    engine: sa.Engine
    audit: AuditLog
    settings: Settings
    genesys_ready: Callable[[], str]  # raises when Genesys is not reachable
    wake: Callable[[], None] | None = None


def _epoch(text: str | None, *, end: bool = False) -> float | None:
    if not text:
        return None
    try:
        moment = parse_iso(text)
    except ValueError:
        abort(400, f"not a date: {text!r}")
    epoch = moment.timestamp()
    if end and len(text.strip()) == 10:  # a bare date: the whole day
        epoch += 86400
    return epoch


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        abort(400, f"not a date: {text!r}")


def _secure() -> bool:
    return request.is_secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def blueprint(parts: Parts) -> Blueprint:
    bp = Blueprint(
        "console",
        __name__,
        url_prefix=PREFIX,
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
        static_url_path="/static",
    )
    store = OperatorStore(parts.engine)
    open_routes = {"console.sign_in", "console.static"}

    @bp.before_request
    def _guard() -> BaseResponse | None:
        session = store.session(request.cookies.get(COOKIE))
        g.console_session = session
        if request.endpoint in open_routes:
            return None
        if session is None:
            target = request.full_path if request.method == "GET" else PREFIX + "/"
            return redirect(url_for("console.sign_in", next=target.rstrip("?")))
        if request.method == "POST":
            sent = request.form.get("csrf_token", "")
            if not sent or not hmac.compare_digest(sent, session.csrf_token):
                abort(403, "missing or wrong form token (CSRF): reload the page and try again")
        return None

    @bp.after_request
    def _headers(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'"
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @bp.context_processor
    def _globals() -> dict[str, Any]:
        session: Session | None = g.get("console_session")
        return {
            "operator": session.operator if session else None,
            "csrf_token": session.csrf_token if session else "",
            "t": queries.shown_time,
            "open_states": OPEN_STATES,
            "finished_states": FINISHED_STATES,
            "all_states": OPEN_STATES + FINISHED_STATES,
        }

    def _next_url() -> str:
        target = request.values.get("next") or ""
        if not target.startswith(PREFIX + "/") or target.startswith("//"):
            return url_for("console.overview")
        return target

    @bp.route("/sign-in", methods=["GET", "POST"])
    def sign_in() -> BaseResponse | tuple[str, int] | str:
        error = None
        if request.method == "POST":
            nonce = request.cookies.get(SIGNIN_COOKIE, "")
            sent = request.form.get("csrf_token", "")
            if not nonce or not hmac.compare_digest(nonce, sent):
                abort(403, "missing or wrong form token (CSRF): reload the page and try again")
            name = store.verify(request.form.get("token", "").strip())
            if name is not None:
                cookie, session = store.open_session(name)
                parts.audit.record(
                    Tag.CONSOLE_SIGNED_IN,
                    actor=actor(name),
                    detail={"remote_addr": request.remote_addr},
                )
                response = redirect(_next_url())
                response.set_cookie(
                    COOKIE,
                    cookie,
                    max_age=int(session.expires_at - time.time()),
                    path=PREFIX,
                    httponly=True,
                    samesite="Strict",
                    secure=_secure(),
                )
                response.delete_cookie(SIGNIN_COOKIE, path=PREFIX)
                return response
            parts.audit.record(
                Tag.CONSOLE_AUTH_FAILED,
                actor="anonymous",
                outcome="refused",
                detail={"reason": "unknown or revoked token", "remote_addr": request.remote_addr},
            )
            error = "That token is not a live operator token."
        nonce = secrets.token_urlsafe(24)
        body = render_template(
            "sign_in.html", nonce=nonce, error=error, next=request.values.get("next", "")
        )
        response = Response(body, status=401 if error else 200)
        response.set_cookie(
            SIGNIN_COOKIE,
            nonce,
            max_age=1800,
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=_secure(),
        )
        return response

    @bp.post("/sign-out")
    def sign_out() -> BaseResponse:
        session: Session = g.console_session
        store.close_session(request.cookies.get(COOKIE, ""))
        parts.audit.record(Tag.CONSOLE_SIGNED_OUT, actor=actor(session.operator))
        response = redirect(url_for("console.sign_in"))
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @bp.get("/")
    def overview() -> str:
        now = time.time()
        seq, _ = parts.audit.head()
        shown = queries.overview(
            parts.engine,
            now=now,
            breaker=parts.settings.delete_breaker,
            budget_per_minute=parts.settings.rate_limit_per_minute,
            audit_head_seq=seq,
        )
        try:
            genesys = (True, parts.genesys_ready())
        except Exception as e:  # any failure is "not ready", shown as it is
            genesys = (False, str(e) or type(e).__name__)
        return render_template(
            "overview.html", o=shown, now=now, genesys=genesys, verified=None, tripped=_tripped
        )

    def _tripped(o: queries.Overview) -> bool:
        return o.breaker is not None and o.deletes_in_window >= o.breaker.limit

    @bp.post("/audit/verify")
    def verify() -> str:
        session: Session = g.console_session
        result = parts.audit.verify()
        parts.audit.record(
            Tag.CONSOLE_AUDIT_VERIFIED,
            actor=actor(session.operator),
            outcome="ok" if result.ok else "broken",
            detail={"count": result.count, "first_broken_seq": result.first_broken_seq},
        )
        return render_template("verified.html", result=result)

    @bp.get("/jobs")
    def job_list() -> str:
        args = request.args
        where = queries.JobFilter(
            state=args.get("state") or None,
            action=args.get("action") or None,
            user=(args.get("user") or "").strip() or None,
            idp=args.get("idp") or None,
            since=_epoch(args.get("since")),
            until=_epoch(args.get("until"), end=True),
        )
        try:
            page = max(int(args.get("page", "1")), 1)
        except ValueError:
            page = 1
        rows, more = queries.job_page(parts.engine, where, page=page)
        query = {k: v for k, v in args.items() if k != "page" and v}
        return render_template(
            "jobs.html",
            rows=rows,
            more=more,
            page=page,
            query=query,
            idps=queries.idps(parts.engine),
        )

    def _job_page(job: Job, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
        steps = jobs.steps_of(parts.engine, job.id)
        history = job.history
        sides = {
            "before": evidence.shown(history.before) if history.before else None,
            "after": evidence.shown(history.after) if history.after else None,
        }
        body = render_template(
            "job.html",
            job=job,
            described=operators.describe(job),
            steps=steps,
            sides=sides,
            events=queries.job_events(parts.engine, job.id),
            actions=[(a, *ACTIONS[a]) for a in applicable(job)],
            error=error,
        )
        return body, status

    def _find(job_id: str) -> Job:
        job = jobs.find(parts.engine, job_id)
        if job is None:
            abort(404, f"no job {job_id}")
        return job

    @bp.get("/jobs/<job_id>")
    def job_page(job_id: str) -> tuple[str, int]:
        return _job_page(_find(job_id))

    @bp.post("/jobs/<job_id>/act")
    def act(job_id: str) -> BaseResponse | tuple[str, int]:
        session: Session = g.console_session
        job = _find(job_id)
        name = request.form.get("action", "")
        if name not in ACTIONS:
            abort(400, f"unknown action {name!r}")
        reason = " ".join(request.form.get("reason", "").split())[:MAX_REASON]
        if not reason:
            return _job_page(job, error=f"{ACTIONS[name][0]}: a reason is required.", status=400)
        if request.form.get("confirmed") != "yes":
            label, what = ACTIONS[name]
            body = render_template(
                "confirm.html", job=job, action=name, label=label, what=what, reason=reason
            )
            return body, 200
        now = time.time()
        try:
            operators.apply(
                parts.engine,
                parts.audit,
                job.id,
                command(name, job, session.operator, reason, now),
                now=now,
                reason=reason,
            )
        except m.NotAllowed as e:
            return _job_page(jobs.find(parts.engine, job.id) or job, error=str(e), status=409)
        if parts.wake is not None:
            parts.wake()
        return redirect(url_for("console.job_page", job_id=job.id, done=name), code=303)

    @bp.get("/people")
    def person() -> str:
        lookup = (request.args.get("q") or "").strip()
        found = queries.person(parts.engine, lookup) if lookup else None
        return render_template("person.html", q=lookup, p=found)

    def _audit_filter() -> queries.AuditFilter:
        args = request.args
        tag = args.get("tag") or None
        if tag is not None and tag not in set(Tag):
            abort(400, f"unknown tag {tag!r}")
        return queries.AuditFilter(
            tag=tag,
            user=(args.get("user") or "").strip() or None,
            actor=(args.get("actor") or "").strip() or None,
            since=_moment(args.get("since")),
            until=_moment(args.get("until")),
        )

    @bp.get("/audit")
    def audit() -> str:
        where = _audit_filter()
        before = request.args.get("before")
        events, next_before = queries.audit_page(
            parts.engine, where, before_seq=int(before) if before and before.isdigit() else None
        )
        query = {k: v for k, v in request.args.items() if k != "before" and v}
        return render_template(
            "audit.html", events=events, next_before=next_before, query=query, tags=list(Tag)
        )

    @bp.get("/audit/export.jsonl")
    def audit_export() -> Response:
        session: Session = g.console_session
        where = _audit_filter()
        parts.audit.record(
            Tag.ADMIN_AUDIT_EXPORTED,
            actor=actor(session.operator),
            detail={
                "filters": {k: v for k, v in request.args.items() if v},
                "via": "console",
            },
        )
        response = Response(
            queries.audit_export(parts.engine, where), mimetype="application/x-ndjson"
        )
        response.headers["Content-Disposition"] = 'attachment; filename="audit.jsonl"'
        return response

    @bp.errorhandler(400)
    @bp.errorhandler(403)
    @bp.errorhandler(404)
    def _error(error: Any) -> tuple[str, int]:
        code = int(getattr(error, "code", 500))
        return render_template("error.html", code=code, message=error.description), code

    return bp


def init_app(app: Flask, parts: Parts) -> None:
    app.register_blueprint(blueprint(parts))
