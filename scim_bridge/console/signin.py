"""Signing in and out, and the guard in front of every other console route.

Signing in takes a named operator's token (``scim-bridge operators create``) and sets a session
cookie: HttpOnly, SameSite=Strict, Secure when the request came over https, expiring with the
session (``operators.SESSION_S``). Every form carries the session's CSRF token and every POST
without the right one is refused (403). A request without a session is sent to the sign-in page.
Failed sign-ins are throttled per client address and overall (``console/throttle.py``): over the
limit the token is not looked at and the answer is 429 saying until when.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from scim_bridge.audit import Tag
from scim_bridge.console import web
from scim_bridge.console.operators import actor
from scim_bridge.console.throttle import Refusal

OPEN_ENDPOINTS = frozenset({"console.sign_in", "console.static"})
SIGN_IN_FORM_S = 1800


def register(bp: Blueprint) -> None:
    bp.before_request(guard)
    bp.add_url_rule("/sign-in", "sign_in", sign_in, methods=["GET", "POST"])
    bp.add_url_rule("/sign-out", "sign_out", sign_out, methods=["POST"])


def guard() -> BaseResponse | None:
    current = web.console().operators.session(request.cookies.get(web.COOKIE))
    g.console_session = current
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if current is None:
        target = request.full_path if request.method == "GET" else web.PREFIX + "/"
        return redirect(url_for("console.sign_in", next=target.rstrip("?")))
    if request.method == "POST":
        check_form_token(current.csrf_token)
    return None


def check_form_token(expected: str) -> None:
    sent = request.form.get("csrf_token", "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        abort(403, "missing or wrong form token (CSRF): reload the page and try again")


def sign_in() -> BaseResponse:
    if request.method == "GET":
        return _form()
    check_form_token(request.cookies.get(web.SIGNIN_COOKIE, ""))
    ctx, address = web.console(), web.client_address()
    refusal = ctx.sign_ins.refusal(address)
    if refusal is not None:
        return _throttled(refusal, address)
    name = ctx.operators.verify(request.form.get("token", "").strip())
    if name is None:
        ctx.sign_ins.failed(address)
        ctx.parts.audit.record(
            Tag.CONSOLE_AUTH_FAILED,
            actor="anonymous",
            outcome="refused",
            detail={"reason": "unknown or revoked token", "remote_addr": address},
        )
        return _form("That token is not a live operator token.", status=401)
    ctx.sign_ins.succeeded(address)
    return _signed_in(name, address)


def _signed_in(name: str, address: str) -> BaseResponse:
    ctx = web.console()
    cookie, opened = ctx.operators.open_session(name)
    ctx.parts.audit.record(
        Tag.CONSOLE_SIGNED_IN, actor=actor(name), detail={"remote_addr": address}
    )
    response = redirect(_next_url())
    response.set_cookie(
        web.COOKIE,
        cookie,
        max_age=int(opened.expires_at - time.time()),
        path=web.PREFIX,
        httponly=True,
        samesite="Strict",
        secure=web.secure(),
    )
    response.delete_cookie(web.SIGNIN_COOKIE, path=web.PREFIX)
    return response


def _throttled(refusal: Refusal, address: str) -> BaseResponse:
    """429 without looking at the token; audited at most once per address and limit every
    10 s (with how many refusals the event stands for)."""
    ctx, now = web.console(), time.time()
    suppressed = ctx.refusals.admit(f"console:{refusal.limit}:{address}")
    if suppressed is not None:
        ctx.parts.audit.record(
            Tag.CONSOLE_SIGN_IN_THROTTLED,
            actor="anonymous",
            outcome="refused",
            detail={
                "limit": refusal.limit,
                "failures_in_window": refusal.failures,
                "window_s": ctx.sign_ins.limits.window_s,
                "remote_addr": address,
                "suppressed_since_last": suppressed,
            },
        )
    until = datetime.fromtimestamp(refusal.retry_at, UTC).strftime("%H:%M:%S UTC")
    minutes = round(ctx.sign_ins.limits.window_s / 60)
    whose = (
        "from your address" if refusal.limit == "address" else "to this console from all addresses"
    )
    message = (
        f"Too many failed sign-ins {whose} ({refusal.failures} in {minutes} minutes). "
        f"Sign-in is paused until {until}; your token was not checked. "
        "Each attempt is on the audit trail."
    )
    response = _form(message, status=429)
    response.headers["Retry-After"] = str(refusal.retry_after_s(now))
    return response


def _form(error: str | None = None, *, status: int = 200) -> Response:
    """The sign-in page with a fresh double-submit token (its cookie and its hidden field)."""
    nonce = secrets.token_urlsafe(24)
    body = render_template(
        "sign_in.html", nonce=nonce, error=error, next=request.values.get("next", "")
    )
    response = Response(body, status=status)
    response.set_cookie(
        web.SIGNIN_COOKIE,
        nonce,
        max_age=SIGN_IN_FORM_S,
        path=web.PREFIX,
        httponly=True,
        samesite="Strict",
        secure=web.secure(),
    )
    return response


def _next_url() -> str:
    target = request.values.get("next") or ""
    if not target.startswith(web.PREFIX + "/") or target.startswith("//"):
        return url_for("console.overview")
    return target


def sign_out() -> BaseResponse:
    ctx, current = web.console(), web.session()
    ctx.operators.close_session(request.cookies.get(web.COOKIE, ""))
    ctx.parts.audit.record(
        Tag.CONSOLE_SIGNED_OUT,
        actor=actor(current.operator),
        detail={"remote_addr": web.client_address()},
    )
    response = redirect(url_for("console.sign_in"))
    response.delete_cookie(web.COOKIE, path=web.PREFIX)
    return response
