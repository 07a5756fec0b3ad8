"""``/admin/ui``: the operator console, server-rendered (Flask + Jinja, no JavaScript needed).

The blueprint is put together here from its parts, a module each: signing in and out and the
guard in front of every route (signin.py), the read-only pages (pages.py), a job and the actions
on it (job_views.py), the audit trail (audit_views.py) and SCIM token transfer (token_views.py).
They find what they read and drive through ``web.console()``, stored on the app by ``init_app``.
The JSON admin API (``/admin/jobs``, bearer ``SCIM_BRIDGE_ADMIN_TOKEN``) is separate and unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, g, render_template

from scim_bridge.console import audit_views, job_views, pages, queries, signin, token_views, web
from scim_bridge.console.operators import Session
from scim_bridge.deprovision.record import FINISHED_STATES, OPEN_STATES

HERE = Path(__file__).parent
Parts = web.Parts

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def blueprint() -> Blueprint:
    bp = Blueprint(
        "console",
        __name__,
        url_prefix=web.PREFIX,
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
        static_url_path="/static",
    )
    for part in (signin, pages, job_views, audit_views, token_views):
        part.register(bp)
    bp.after_request(_headers)
    bp.context_processor(_globals)
    for code in (400, 403, 404):
        bp.register_error_handler(code, _error)
    return bp


def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _globals() -> dict[str, Any]:
    session: Session | None = g.get("console_session")
    return {
        "operator": session.operator if session else None,
        "csrf_token": session.csrf_token if session else "",
        "t": queries.shown_time,
        "waits_on": queries.waits_on,
        "open_states": OPEN_STATES,
        "finished_states": FINISHED_STATES,
        "all_states": OPEN_STATES + FINISHED_STATES,
    }


def _error(error: Any) -> tuple[str, int]:
    code = int(getattr(error, "code", 500))
    return render_template("error.html", code=code, message=error.description), code


def init_app(app: Flask, parts: Parts) -> None:
    app.extensions[web.EXTENSION] = web.Console.build(parts)
    app.register_blueprint(blueprint())
