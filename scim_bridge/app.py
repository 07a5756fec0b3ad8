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

import concurrent.futures
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from scim_bridge import admin, console, correlation, logs, scim
from scim_bridge.admin import health, jobs_routes
from scim_bridge.admin.metrics import JOB_BUCKETS, JobsSnapshot, Metrics
from scim_bridge.audit import AuditLog
from scim_bridge.audit.beacon import HeadBeacon
from scim_bridge.audit.throttle import FailureThrottle
from scim_bridge.bootstrap import Components, WorkerOptions, bootstrap
from scim_bridge.config import Settings
from scim_bridge.deprovision import jobs, wiring
from scim_bridge.genesys.api import Gateway
from scim_bridge.genesys.reachability import Reachability
from scim_bridge.scim import errors as scim_errors

# /readyz: how long the Genesys check may take (a slow Genesys must not make the probe slow).
READINESS_GENESYS_S = 2.0
# /readyz: how old the latest Genesys outcome may be before a probe makes a call of its own.
GENESYS_FRESH_S = 30.0
# /readyz: a failed call with an answer this recent is a stray error, not an outage (a single
# 500 must not take every replica out of the load balancer at once).
GENESYS_GRACE_S = 10.0
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
    # With AUDIT_HMAC_KEY, the head is keyed from the first start on; without it, a keyed chain
    # refuses the start (AuditKeyRequired) rather than take unkeyed events (docs/audit.md).
    try:
        components.audit.ensure_keyed_head(actor="bridge")
    except Exception:
        components.close()
        raise
    beacon = HeadBeacon(components.audit, settings.audit_head_log_interval_s)
    components.on_close(beacon.stop)  # before the engine is disposed: it logs a last head
    _start_on_first_request(app, beacon.start)
    _init_request_context(app, metrics)
    deprovisioner = components.deprovisioner  # the gateway and services, when Genesys is set
    if deprovisioner is not None:
        _start_worker_on_first_request(app, deprovisioner)
    metrics.read_jobs_with(lambda: _jobs_snapshot(components.engine))
    _register_parts(app, components, metrics)
    _routing_errors(app)
    return app


def _register_parts(app: Flask, components: Components, metrics: Metrics) -> None:
    """Health, the admin API, the console and SCIM, on the collaborators ``bootstrap`` built."""
    settings = components.settings
    deprovisioner = components.deprovisioner
    wake = deprovisioner.wake if deprovisioner else None
    checks = _readiness_checks(components)
    app.register_blueprint(health.blueprint(checks=checks, metrics=metrics))
    admin_throttle = FailureThrottle()  # one for every guarded admin blueprint
    admin.init_app(app, audit=components.audit, settings=settings, throttle=admin_throttle)
    jobs_routes.init_app(
        app,
        engine=components.engine,
        audit=components.audit,
        settings=settings,
        wake=wake,
        throttle=admin_throttle,
    )
    console.init_app(
        app,
        console.Parts(
            engine=components.engine,
            audit=components.audit,
            settings=settings,
            genesys_ready=checks["genesys"],
            wake=wake,
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
            rehire=settings.rehire,
            rehire_restore_footprint=settings.rehire_restore_footprint,
            request_deadline_s=settings.request_deadline_s,
            max_genesys_calls=settings.max_genesys_calls,
            public_url=settings.public_url,
        ),
    )


def _routing_errors(app: Flask) -> None:
    """404 and 405 from routing (no view matched, so no blueprint handler runs; Flask
    ``docs/blueprints.rst``): SCIM JSON under /scim, JSON under /admin, Flask's own elsewhere."""

    def unmatched(exc: HTTPException) -> Response | HTTPException:
        if admin.is_admin_path():
            return admin.http_error(exc)
        return scim_errors.unmatched(exc)

    app.register_error_handler(404, unmatched)
    app.register_error_handler(405, unmatched)


def _start_on_first_request(app: Flask, start: Callable[[], None]) -> None:
    """A thread starts in the process that serves, at its first request (not in ``create_app``:
    gunicorn's ``preload_app`` forks after it, and a thread does not survive a fork)."""
    started = threading.Event()

    @app.before_request
    def _start() -> None:
        if not started.is_set():
            started.set()
            start()


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
    engine = components.engine

    def database() -> str:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return f"reachable ({engine.dialect.name})"

    return {
        "database": database,
        "genesys": _genesys_check(components),
        "worker": _worker_check(components),
    }


def _genesys_check(components: Components) -> health.Check:
    """Ready when Genesys answered the latest exchange this process had with it. The outcome is
    read from the calls the bridge makes anyway; only when none came for ``GENESYS_FRESH_S``
    does a probe make one call (a token, else the home division: a rate-budget slot like any
    call), so load-balancer probes every few seconds cost at most one call per that interval."""
    settings = components.settings
    reachability = components.reachability
    in_flight: list[concurrent.futures.Future[None]] = []

    def probe(gateway: Gateway) -> None:
        # Longer than the probe waits: the probe's answer is then always its own timeout, and
        # a slow answer still arrives for the next request.
        deadline = time.monotonic() + 2 * READINESS_GENESYS_S
        gateway.ensure_token(deadline=deadline)
        last = reachability.last()
        if last is None or reachability.age(last) > GENESYS_FRESH_S:
            gateway.home_division(deadline=deadline)

    def genesys() -> str:
        gateway = components.gateway
        if gateway is None:
            raise RuntimeError("no Genesys org configured (GENESYS_REGION or GENESYS_API_HOST)")
        last = reachability.last()
        if last is None or reachability.age(last) > GENESYS_FRESH_S:
            try:
                _wait_for(in_flight, lambda: probe(gateway))
            except Exception:
                _raise_if_unreachable(reachability)  # the reason the probe failed, if it is that
                raise
        _raise_if_unreachable(reachability)
        last = reachability.last()
        age = f"{reachability.age(last):.0f} s ago" if last is not None else "just now"
        return f"answered {age} ({settings.genesys_api_host})"

    return genesys


def _raise_if_unreachable(reachability: Reachability) -> None:
    last = reachability.last()
    if last is None or last.answered:
        return
    answer_age = reachability.last_answer_age()
    if answer_age is not None and answer_age < GENESYS_GRACE_S:
        return
    answered = (
        f"last answer {answer_age:.0f} s ago"
        if answer_age is not None
        else "no answer since this process started"
    )
    raise ConnectionError(
        f"Genesys unreachable: the last call failed {reachability.age(last):.0f} s ago "
        f"({last.describe()}); {answered}"
    )


def _wait_for(in_flight: list[concurrent.futures.Future[None]], work: Callable[[], None]) -> None:
    """Run ``work`` on a thread of its own and wait for it at most READINESS_GENESYS_S: a probe
    must answer fast while Genesys is slow (one in flight at a time, so repeated probes against
    a hung Genesys do not pile up threads)."""
    if not in_flight or in_flight[0].done():
        future: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                work()
                future.set_result(None)
            except BaseException as e:  # handed to the probe that waits for it
                future.set_exception(e)

        threading.Thread(target=run, name="readiness-genesys", daemon=True).start()
        in_flight[:] = [future]
    try:
        in_flight[0].result(timeout=READINESS_GENESYS_S)
    except concurrent.futures.TimeoutError:
        raise TimeoutError(f"Genesys gave no answer within {READINESS_GENESYS_S:.0f} s") from None


def _worker_check(components: Components) -> health.Check:
    engine = components.engine

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

    return worker
