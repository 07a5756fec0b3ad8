"""The sandbox's Flask app: the request pipeline every Genesys endpoint shares.

For ``/api/...`` and ``/oauth/token``, in order: the latency fault, the bearer token (401), the
per-token rate budget (429 with ``Retry-After``), injected failures (``fail_next``, then
``error_rate``), then the view (permissions, 403, are checked there). Every response gets the
``inin-ratelimit-*`` and ``inin-correlation-id`` headers (genesys-api.md 5.2); every error is an
``ErrorBody`` (5.3) whose ``contextId`` is the correlation id.
"""

from __future__ import annotations

import time
import uuid

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from scim_bridge.sandbox.config import SandboxConfig
from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.http import json_response, sandbox
from scim_bridge.sandbox.ratelimit import Decision, RateLimiter
from scim_bridge.sandbox.routes import (
    analytics,
    authorization,
    control,
    groups,
    oauth,
    routing,
    skills,
    tokens,
    users,
)
from scim_bridge.sandbox.state import SandboxState


def create_app(config: SandboxConfig | None = None) -> Flask:
    app = Flask("scim_bridge.sandbox")
    app.extensions["sandbox"] = SandboxState(config or SandboxConfig())
    app.url_map.strict_slashes = False
    for module in (
        oauth,
        users,
        routing,
        analytics,
        groups,
        authorization,
        skills,
        tokens,
        control,
    ):
        app.register_blueprint(module.bp)
    app.before_request(_before)
    app.after_request(_after)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _is_control(path: str) -> bool:
    return path == "/sandbox" or path.startswith("/sandbox/")


def _before() -> None:
    g.correlation_id = str(uuid.uuid4())
    path = request.path
    if _is_control(path):
        return
    state = sandbox()
    latency = state.faults.latency_ms
    if latency > 0:
        time.sleep(latency / 1000)
    with state.lock:
        now, faults = state.clock(), state.faults
        limit, window = faults.rate_limit_per_minute, faults.rate_limit_window_s
        g.decision = RateLimiter.idle(limit, window)
        if path == "/oauth/token":
            # genesys-api.md 5.1: client.credentials.token.rate.per.minute, keyed by client id.
            auth = request.authorization
            key = "oauth:" + ((auth.username or "") if auth else "")
            limit, window = faults.token_rate_limit_per_minute, 60.0
        elif path.startswith("/api/"):
            token, client = state.clients.check(request.headers.get("Authorization"), now)
            g.client = client
            g.session_user_id = token.user_id  # set for a user's session (auth.py)
            key = "token:" + token.value
        else:
            return
        decision = state.limiter.take(key, now, limit, window)
        g.decision = decision
        if not decision.allowed:
            raise ApiError(
                429,
                f"Rate limit exceeded the maximum. Retry the request in [{decision.reset_s}] seconds",
                "too.many.requests.retry.after",
                message_with_params="Rate limit exceeded the maximum. Retry the request in [{retryAfter}] seconds",
                message_params={"retryAfter": str(decision.reset_s)},
                headers={"Retry-After": str(decision.reset_s)},
                extra={
                    "limit": {
                        "key": "token.rate.per.minute",
                        "namespace": "platform.api",
                        "value": limit,
                    }
                },
            )
        failure = state.injected_failure(request.method, path)
    if failure is not None:
        raise failure


def _after(response: Response) -> Response:
    path = request.path
    state = sandbox()
    if not _is_control(path):
        decision: Decision | None = g.get("decision")
        if decision is None:
            decision = RateLimiter.idle(
                state.faults.rate_limit_per_minute, state.faults.rate_limit_window_s
            )
        response.headers.update(decision.headers())
        rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        with state.lock:
            state.stats.record(f"{request.method} {rule}", response.status_code)
    response.headers["inin-correlation-id"] = g.get("correlation_id") or str(uuid.uuid4())
    return response


def _api_error(error: ApiError) -> Response:
    context_id = g.get("correlation_id") or str(uuid.uuid4())
    g.correlation_id = context_id
    response = json_response(error.body(context_id), error.status)
    response.headers.update(error.headers)
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 404:
        return _api_error(ApiError.not_found())
    if status == 405:
        return _api_error(
            ApiError(405, f"Method {request.method} is not allowed on {request.path}.")
        )
    return _api_error(ApiError(status, error.description or error.name))


def _unexpected(error: Exception) -> Response:
    # A bug in the sandbox: answered like Genesys would, logged with its traceback.
    current_app.logger.exception("sandbox error", exc_info=error)
    return _api_error(ApiError(500, "The server encountered an unexpected error."))
