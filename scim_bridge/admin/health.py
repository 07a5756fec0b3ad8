"""Liveness, readiness and metrics: the endpoints a platform probes, unauthenticated.

- ``/healthz``: the process answers (liveness). Nothing else is checked, so a Genesys outage never
  gets the pods restarted.
- ``/readyz``: each dependency checked, as per-component JSON; 503 when one fails, so a load
  balancer sends SCIM traffic elsewhere and the on-call engineer sees which part is down.
- ``/metrics``: Prometheus exposition (``admin/metrics.py``).

Checks are plain callables handed in by ``create_app`` (this part imports neither the gateway
nor the engine): each returns a short detail string or raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from flask import Blueprint, Response, jsonify

from scim_bridge.admin.metrics import Metrics

Check = Callable[[], str]


def blueprint(*, checks: Mapping[str, Check], metrics: Metrics) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @bp.get("/readyz")
    def readyz() -> Response:
        components: dict[str, dict[str, object]] = {}
        for name, check in checks.items():
            started = time.monotonic()
            try:
                detail = check()
                components[name] = {"status": "ok", "detail": detail}
            except Exception as e:  # a failing dependency is the answer, not an error
                components[name] = {"status": "fail", "detail": _describe(e)}
            components[name]["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        ready = all(c["status"] == "ok" for c in components.values())
        response = jsonify(status="ok" if ready else "fail", components=components)
        response.status_code = 200 if ready else 503
        return response

    @bp.get("/metrics")
    def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    return bp


def _describe(error: Exception) -> str:
    """What failed, without upstream bodies or secrets: the type and its own short message."""
    message = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {message[:200]}".rstrip(": ")
