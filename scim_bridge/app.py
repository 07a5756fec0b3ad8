"""``create_app()``: the HTTP surface, wired to the parts ``bootstrap`` builds (STYLE.md 1).

Data flows one way: HTTP -> ``scim`` -> ``directory`` / ``deprovision`` -> ``genesys``. The parts
know each other only through the interfaces they are handed here; ``scim_bridge.bootstrap`` (which
the commands use too) builds the database engine, the Genesys gateway, the rate budget and the
worker. Nothing imports this module but the entry points (``wsgi.py``, ``serve``, ``demo``).

``create_app`` accepts settings without a Genesys org (the admin API and the audit trail still
work, and SCIM answers 503 saying no org is configured); the production entry points refuse to
start that way (``wsgi.py``, ``scim-bridge serve``: ``Settings.require_genesys``).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import Flask, Response, g, request

from scim_bridge import admin, console, correlation, logs, scim
from scim_bridge.admin import health, jobs_routes
from scim_bridge.admin.metrics import JOB_BUCKETS, JobsSnapshot, Metrics
from scim_bridge.audit import AuditLog
from scim_bridge.bootstrap import Components, WorkerOptions, bootstrap
from scim_bridge.config import Settings
from scim_bridge.deprovision import jobs, wiring
from scim_bridge.genesys.api import Gateway

# /readyz: a worker that has not reported for this long is presumed gone.
WORKER_STALE_S = 120.0


def create_app(
    settings: Settings | None = None,
    *,
    engine: sa.Engine | None = None,
    audit: AuditLog | None = None,
    gateway: Gateway | None = None,
    metrics: Metrics | None = None,
) -> Flask:
    """The bridge's Flask app. The keyword arguments are collaborators to use instead of the
    ones ``bootstrap`` would build (tests); what is handed in is not closed by the app."""
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    app = Flask("scim_bridge")
    metrics = metrics or Metrics()
    components = bootstrap(
        settings,
        engine=engine,
        audit=audit,
        gateway=gateway,
        metrics=metrics,
        worker=WorkerOptions(in_process=settings.worker_in_process),
    )
    app.extensions["scim_bridge"] = components
    _init_request_context(app, metrics)
    deprovisioner = components.deprovisioner  # the gateway and services, when Genesys is set
    if deprovisioner is not None:
        _start_worker_on_first_request(app, deprovisioner)
    metrics.read_jobs_with(lambda: _jobs_snapshot(components.engine))
    checks = _readiness_checks(components)
    app.register_blueprint(health.blueprint(checks=checks, metrics=metrics))
    admin.init_app(app, audit=components.audit, settings=settings)
    jobs_routes.init_app(
        app,
        engine=components.engine,
        audit=components.audit,
        settings=settings,
        wake=deprovisioner.wake if deprovisioner else None,
    )
    console.init_app(
        app,
        console.Parts(
            engine=components.engine,
            audit=components.audit,
            settings=settings,
            genesys_ready=checks["genesys"],
            wake=deprovisioner.wake if deprovisioner else None,
        ),
    )
    scim.init_app(
        app,
        scim.ScimContext(
            directory_service=components.directory,
            tokens=components.tokens,
            audit=components.audit,
            deprovisioning=deprovisioner.service if deprovisioner else None,
            ack_mode=settings.ack_mode,
        ),
    )
    return app


def _start_worker_on_first_request(app: Flask, deprovisioner: wiring.JobEngine) -> None:
    """The in-process worker starts in the process that serves, at its first request.

    Not in ``create_app``: gunicorn's ``preload_app`` builds the app in the master and forks, and a
    thread does not survive a fork. Each serving process then runs one worker thread; they share
    the jobs through leases. ``SCIM_BRIDGE_IN_PROCESS_WORKER=false`` leaves it to
    ``scim-bridge worker``.
    """
    if not deprovisioner.in_process:
        return

    @app.before_request
    def _ensure_worker() -> None:
        if deprovisioner.thread is None:
            deprovisioner.wake()


def _init_request_context(app: Flask, metrics: Metrics) -> None:
    """Correlation ids (``X-Request-Id`` in, out, and on every event and log line) and the
    SCIM request metrics."""

    @app.before_request
    def _bind_correlation_id() -> None:
        cid = correlation.accept(request.headers.get("X-Request-Id"))
        g.correlation_id = cid
        g.started = time.perf_counter()
        correlation.set_current(cid)

    @app.after_request
    def _finish(response: Response) -> Response:
        cid = g.get("correlation_id")
        if cid:
            response.headers["X-Request-Id"] = cid
        if request.path.startswith("/scim/"):
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.observe_scim_request(
                endpoint=rule,
                method=request.method,
                status=response.status_code,
                token=str(g.get("scim_token_name") or "none"),
                duration_s=time.perf_counter() - g.get("started", time.perf_counter()),
            )
        return response

    @app.teardown_request
    def _unbind_correlation_id(_exc: BaseException | None) -> None:
        correlation.set_current(None)


def _jobs_snapshot(engine: sa.Engine) -> JobsSnapshot:
    now = time.time()
    by_state, oldest = jobs.counts_by_state(engine)
    workers = jobs.workers(engine)
    return JobsSnapshot(
        by_state=by_state,
        oldest_open_age_s=max(now - oldest, 0.0) if oldest is not None else 0.0,
        worker_heartbeat_age_s=(now - float(workers[0]["seen_at"])) if workers else None,
        durations=jobs.duration_buckets(engine, JOB_BUCKETS),
        history_mismatches=jobs.history_mismatches(engine),
    )


def _readiness_checks(components: Components) -> dict[str, health.Check]:
    engine, settings = components.engine, components.settings

    def database() -> str:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return f"reachable ({engine.dialect.name})"

    def genesys() -> str:
        if components.gateway is None:
            raise RuntimeError("no Genesys org configured (GENESYS_REGION or GENESYS_API_HOST)")
        components.gateway.ensure_token(deadline=time.monotonic() + 5)
        return f"token obtainable for {settings.genesys_api_host}"

    def worker() -> str:
        workers = jobs.workers(engine)
        age = time.time() - float(workers[0]["seen_at"]) if workers else None
        if age is not None and age <= WORKER_STALE_S:
            return f"last heartbeat {age:.0f}s ago ({workers[0]['worker_id']})"
        deprovisioner = components.deprovisioner
        thread = deprovisioner.thread if deprovisioner is not None else None
        if thread is not None and thread.alive:
            return "in-process worker running, first heartbeat pending"
        starting = time.time() - components.started_at < WORKER_STALE_S
        if age is None and starting and deprovisioner is not None and deprovisioner.in_process:
            return "in-process worker starting"
        seen = "never" if age is None else f"{age:.0f}s ago"
        raise RuntimeError(
            f"no worker heartbeat (last: {seen}): run `scim-bridge worker`, "
            "or set SCIM_BRIDGE_IN_PROCESS_WORKER=true on a single-process server"
        )

    return {"database": database, "genesys": genesys, "worker": worker}
