"""A job's page and the actions on it.

Every action (approve, accept missing conversations, retry, cut access now, cancel) asks for a
reason and a confirmation, and is audited as ``operator:<name>`` with the reason
(``operator_reason`` in the event's detail).
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from scim_bridge.console import queries, web
from scim_bridge.console.operators import actor
from scim_bridge.deprovision import evidence, jobs, operators
from scim_bridge.deprovision import model as m
from scim_bridge.deprovision.record import Job

MAX_REASON = 500

# What an operator may do to a job from the console, and when (the model refuses the rest).
ACTIONS: dict[str, tuple[str, str]] = {
    "approve": ("Approve", "Release the held job: it goes on from its step (past the breaker)."),
    "accept": (
        "Accept missing conversations",
        "Accept the conversations listed as missing after the delete: recorded with your name and"
        " reason, the original evidence kept; the delete then proceeds.",
    ),
    "retry": ("Retry", "Run the job again now from its recorded step (not an approval)."),
    "cut-access": (
        "Cut access now",
        "End the user's sessions at once and deactivate as soon as Genesys allows it, even"
        " during a live conversation (no more waiting for it to end).",
    ),
    "cancel": ("Cancel", "Stop the job; nothing further is done in Genesys."),
}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/jobs/<job_id>", "job_page", job_page)
    bp.add_url_rule("/jobs/<job_id>/act", "act", act, methods=["POST"])


def applicable(job: Job) -> list[str]:
    """The actions that apply to ``job`` in its state (as ``model.command`` allows them)."""
    found = []
    mismatch = job.state == "held" and job.reason == "history-mismatch"
    if mismatch and job.history.missing:
        found.append("accept")
    elif job.state == "held" and not mismatch:
        found.append("approve")
    if job.state in ("held", "waiting", "failed"):
        found.append("retry")
    # Once asked (``forced``), the job revokes and retries on its own: not offered again.
    cuttable = not job.access_cut and job.forced is None and job.state != "running"
    if job.open and job.action != "reactivate" and cuttable:
        found.append("cut-access")
    if job.open:
        found.append("cancel")
    return found


def command(name: str, job: Job, operator: str, now: float, reason: str = "") -> m.Command:
    who = actor(operator)
    if name == "approve":
        return m.Approve(who)
    if name == "accept":
        # What the page listed: the model refuses if the missing set changed since.
        return m.Approve(who, accept=job.history.missing or frozenset(), reason=reason)
    if name == "cut-access":
        return m.CutAccess(who, reason)
    if name == "retry":
        return m.Retry(who)
    leased = job.lease_expires_at is not None and job.lease_expires_at >= now
    return m.Cancel(who, leased=leased, reason="operator")


def reason_given() -> str:
    """The form's reason, whitespace folded, at most ``MAX_REASON`` characters ('' if none)."""
    return " ".join(request.form.get("reason", "").split())[:MAX_REASON]


def _shown(job: Job, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    engine = web.console().parts.engine
    history = job.history
    sides = {
        "before": evidence.shown(history.before) if history.before else None,
        "after": evidence.shown(history.after) if history.after else None,
    }
    body = render_template(
        "job.html",
        job=job,
        described=operators.describe(job),
        steps=jobs.steps_of(engine, job.id),
        sides=sides,
        events=queries.job_events(engine, job.id),
        actions=[(a, *ACTIONS[a]) for a in applicable(job)],
        error=error,
        done=ACTIONS.get(request.args.get("done", ""), ("",))[0].lower(),  # never echoed as sent
    )
    return body, status


def _find(job_id: str) -> Job:
    job = jobs.find(web.console().parts.engine, job_id)
    if job is None:
        abort(404, f"no job {job_id}")
    return job


def job_page(job_id: str) -> tuple[str, int]:
    return _shown(_find(job_id))


def act(job_id: str) -> BaseResponse | tuple[str, int]:
    job, name = _find(job_id), request.form.get("action", "")
    if name not in ACTIONS:
        abort(400, f"unknown action {name!r}")
    label, what = ACTIONS[name]
    reason = reason_given()
    if not reason:
        return _shown(job, error=f"{label}: a reason is required.", status=400)
    if request.form.get("confirmed") != "yes":
        body = render_template(
            "confirm.html", job=job, action=name, label=label, what=what, reason=reason
        )
        return body, 200
    parts, now = web.console().parts, time.time()
    try:
        operators.apply(
            parts.engine,
            parts.audit,
            job.id,
            command(name, job, web.session().operator, now, reason),
            now=now,
            reason=reason,
        )
    except m.NotAllowed as e:
        return _shown(jobs.find(parts.engine, job.id) or job, error=str(e), status=409)
    if parts.wake is not None:
        parts.wake()
    return redirect(url_for("console.job_page", job_id=job.id, done=name), code=303)
