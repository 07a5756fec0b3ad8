"""The admin API's guard: ``Authorization: Bearer <SCIM_BRIDGE_ADMIN_TOKEN>`` on every route.

``protect(blueprint, token=..., audit=...)`` guards every route of a blueprint and of the
blueprints nested in it; ``admin/__init__.py`` applies it once to the ``/admin`` blueprint, so a
route module added there (jobs, approvals, tombstones) is guarded without doing anything. Routes
that must stay open (liveness, readiness, metrics scraped by Prometheus) belong elsewhere.

- no ``SCIM_BRIDGE_ADMIN_TOKEN`` configured: 503, the admin API is disabled (it says so, rather
  than a 404 that looks like a wrong URL); nothing is accepted, not even an empty token;
- missing, malformed or wrong token: 401 with ``WWW-Authenticate: Bearer``, and an
  ``admin:auth:failed`` audit event (the presented token is never recorded), throttled like failed
  SCIM logins: at most one event per reason every 10 s, carrying how many it stands for, so that
  a flood of wrong tokens costs log lines, not hash-chain appends.

The comparison is constant-time over SHA-256 digests (so not even the length leaks).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from flask import Blueprint, Response, jsonify, request

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.audit.throttle import FailureThrottle

REALM = "scim-bridge-admin"

log = logging.getLogger(__name__)


def token_matches(presented: str, expected: str) -> bool:
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def presented_token() -> str | None:
    """The bearer token of the current request, or None (RFC 6750 §2.1)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def protect(
    blueprint: Blueprint,
    *,
    token: str | None,
    audit: AuditLog | None = None,
    throttle: FailureThrottle | None = None,
) -> None:
    """``throttle``: share one between every guarded blueprint of an app (one per call else)."""
    throttle = throttle or FailureThrottle()

    def guard() -> Response | None:
        if not token:
            response = jsonify(
                error="admin_api_disabled",
                detail="the admin API is disabled: set SCIM_BRIDGE_ADMIN_TOKEN to enable it",
            )
            response.status_code = 503
            return response
        presented = presented_token()
        if presented is not None and token_matches(presented, token):
            return None
        reason = "missing" if "Authorization" not in request.headers else "wrong"
        if presented is None and reason == "wrong":
            reason = "malformed"
        log.warning(
            "admin authentication failed",
            extra={"reason": reason, "path": request.path, "method": request.method},
        )
        suppressed = throttle.admit(f"admin:{reason}")
        if audit is not None and suppressed is not None:
            audit.record(
                Tag.ADMIN_AUTH_FAILED,
                actor="anonymous",
                outcome="refused",
                detail={
                    "reason": reason,
                    "method": request.method,
                    "path": request.path,
                    "remote_addr": request.remote_addr,
                    "suppressed_since_last": suppressed,
                },
            )
        response = jsonify(error="unauthorized", detail=f"admin bearer token {reason}")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
        return response

    blueprint.before_request(guard)
