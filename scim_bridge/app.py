"""``create_app()``: the one place where the parts are wired together (STYLE.md 1).

Data flows one way: HTTP -> ``scim`` -> ``directory`` / ``deprovision`` -> ``genesys``. The parts
know each other only through the interfaces they are handed here; this module is the only one
that builds the database engine, the Genesys gateway, the rate budget and the worker.

``create_app`` accepts settings without a Genesys org (the admin API and the audit trail still
work, and SCIM answers 503 saying no org is configured); the production entry points refuse to
start that way (``wsgi.py``, ``scim-bridge serve``: ``Settings.require_genesys``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request

from scim_bridge import admin, console, correlation, logs, scim
from scim_bridge.admin import health, jobs_routes
from scim_bridge.admin.metrics import JOB_BUCKETS, JobsSnapshot, Metrics
from scim_bridge.audit import AuditLog
from scim_bridge.config import Settings
from scim_bridge.deprovision import jobs, wiring
from scim_bridge.directory.service import Directory
from scim_bridge.genesys.budget import RateBudget, SharedBudget
from scim_bridge.genesys.gateway import SdkGateway, connect
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade
from scim_bridge.store.rate_budget import SlotTable

# Genesys counts a minute (GENESYS_RATE_LIMIT_WINDOW); a slot is reused one window plus a second
# after it was taken, for the transit time between the grant here and the request's arrival there
# (as genesys/budget.py's in-process budget).
BUDGET_MARGIN_S = 1.0
# /readyz: a worker that has not reported for this long is presumed gone.
WORKER_STALE_S = 120.0


@dataclasses.dataclass
class Components:
    """What ``create_app`` built, on ``app.extensions["scim_bridge"]``."""

    settings: Settings
    engine: sa.Engine
    audit: AuditLog
    metrics: Metrics
    gateway: SdkGateway | None = None  # None when no Genesys org is configured
    deprovisioner: wiring.JobEngine | None = None
    started_at: float = dataclasses.field(default_factory=time.time)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # a part's private state

    def close(self) -> None:
        """Stop the in-process worker, release Genesys connections and the database pool."""
        if self.deprovisioner is not None:
            self.deprovisioner.stop()
        if self.gateway is not None:
            self.gateway.close()
        self.engine.dispose()


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    app = Flask("scim_bridge")
    engine = make_engine(settings.database_url)
    upgrade(engine)  # every process may do it: migrations lock, and skip what has run
    components = Components(
        settings=settings, engine=engine, audit=AuditLog(engine), metrics=Metrics()
    )
    app.extensions["scim_bridge"] = components
    _init_request_context(app, components)
    if settings.genesys_api_host and settings.genesys_client_id and settings.genesys_client_secret:
        components.gateway = genesys_gateway(settings, engine, components.metrics)
        components.deprovisioner = wiring.build(
            settings,
            engine=engine,
            gateway=components.gateway,
            audit=components.audit,
            start_thread=settings.worker_in_process,
        )
        _start_worker_on_first_request(app, components.deprovisioner)
    components.metrics.read_jobs_with(lambda: _jobs_snapshot(engine))
    checks = _readiness_checks(components)
    app.register_blueprint(health.blueprint(checks=checks, metrics=components.metrics))
    admin.init_app(app, audit=components.audit, settings=settings)
    jobs_routes.init_app(
        app,
        engine=engine,
        audit=components.audit,
        settings=settings,
        wake=components.deprovisioner.wake if components.deprovisioner else None,
    )
    console.init_app(
        app,
        console.Parts(
            engine=engine,
            audit=components.audit,
            settings=settings,
            genesys_ready=checks["genesys"],
            wake=components.deprovisioner.wake if components.deprovisioner else None,
        ),
    )
    scim.init_app(
        app,
        scim.ScimContext(
            directory_service=(
                Directory(components.gateway, engine, call_budget_s=settings.sync_budget_s)
                if components.gateway is not None
                else None
            ),
            tokens=scim.TokenStore(engine),
            audit=components.audit,
            deprovisioning=components.deprovisioner.service if components.deprovisioner else None,
            ack_mode=settings.ack_mode,
        ),
    )
    return app


def genesys_gateway(
    settings: Settings, engine: sa.Engine, metrics: Metrics | None = None
) -> SdkGateway:
    """The Genesys gateway, spending the rate budget shared through the database (one budget per
    OAuth client however many processes and replicas run), with its calls in ``metrics``.

    Every process that calls Genesys builds its gateway here (``create_app`` and
    ``scim-bridge worker``), so that all of them take slots from the same ring.
    """
    slots = SlotTable(
        engine,
        f"{settings.genesys_client_id}@{settings.genesys_api_host}",
        settings.rate_limit_per_minute,
        window_s=settings.rate_limit_window_s + BUDGET_MARGIN_S,
    )
    budget: RateBudget = SharedBudget(settings.rate_limit_per_minute, slots.try_take)
    if metrics is None:
        return connect(settings, budget=budget)
    gateway = connect(settings, budget=_MeteredBudget(budget, metrics))
    gateway.add_observer(
        lambda call: metrics.observe_genesys_call(
            endpoint=call.endpoint,
            method=call.method,
            status=call.status,
            duration_s=call.duration_s,
        )
    )
    return gateway


class _MeteredBudget:
    def __init__(self, budget: RateBudget, metrics: Metrics) -> None:
        self._budget = budget
        self._metrics = metrics

    def acquire(self, deadline: float) -> float:
        waited = self._budget.acquire(deadline)
        self._metrics.rate_budget_wait.observe(waited)
        return waited


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


def _init_request_context(app: Flask, components: Components) -> None:
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
            components.metrics.observe_scim_request(
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
