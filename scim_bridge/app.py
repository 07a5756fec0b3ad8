"""``create_app()``: the one place where the parts are wired together (STYLE.md 1)."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, jsonify, request

from scim_bridge import admin, correlation, logs, scim
from scim_bridge.admin import jobs_routes
from scim_bridge.audit import AuditLog
from scim_bridge.config import Settings
from scim_bridge.deprovision import wiring
from scim_bridge.directory.service import Directory
from scim_bridge.genesys.gateway import connect
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade


@dataclasses.dataclass
class Components:
    """What ``create_app`` built, on ``app.extensions["scim_bridge"]``."""

    settings: Settings
    engine: sa.Engine
    audit: AuditLog
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    app = Flask("scim_bridge")
    engine = make_engine(settings.database_url)
    upgrade(engine)  # every process may do it: migrations lock, and skip what has run
    audit = AuditLog(engine)
    app.extensions["scim_bridge"] = Components(settings=settings, engine=engine, audit=audit)
    admin.init_app(app, audit=audit, settings=settings)
    _init_deprovisioning(app, settings, engine=engine, audit=audit)
    _init_scim(app, settings, engine=engine, audit=audit)

    @app.before_request
    def _bind_correlation_id() -> None:
        cid = correlation.accept(request.headers.get("X-Request-Id"))
        g.correlation_id = cid
        correlation.set_current(cid)

    @app.after_request
    def _return_correlation_id(response: Response) -> Response:
        cid = g.get("correlation_id")
        if cid:
            response.headers["X-Request-Id"] = cid
        return response

    @app.teardown_request
    def _unbind_correlation_id(_exc: BaseException | None) -> None:
        correlation.set_current(None)

    @app.get("/healthz")
    def healthz() -> Response:
        """Liveness: the process answers. Unauthenticated; says nothing about dependencies."""
        return jsonify(status="ok")

    return app


def _init_deprovisioning(
    app: Flask, settings: Settings, *, engine: sa.Engine, audit: AuditLog
) -> None:
    """The gateway, the deprovisioning engine (``extra["deprovisioning"]``, implementing
    ``deprovision.api.Deprovisioning``), its in-process worker and the ``/admin/jobs`` routes."""
    components: Components = app.extensions["scim_bridge"]
    deprovisioner = None
    if settings.genesys_api_host and settings.genesys_client_id and settings.genesys_client_secret:
        gateway = components.extra.get("gateway") or connect(settings)
        components.extra["gateway"] = gateway
        deprovisioner = wiring.build(
            settings,
            engine=engine,
            gateway=gateway,
            audit=audit,
            start_thread=settings.worker_in_process,
        )
        components.extra["deprovisioning"] = deprovisioner.service
        components.extra["deprovisioner"] = deprovisioner
    jobs_routes.init_app(
        app,
        engine=engine,
        audit=audit,
        settings=settings,
        wake=deprovisioner.wake if deprovisioner else None,
    )


def _init_scim(app: Flask, settings: Settings, *, engine: sa.Engine, audit: AuditLog) -> None:
    """The ``/scim/v2`` blueprint over the directory (the gateway built above, if any)."""
    components: Components = app.extensions["scim_bridge"]
    gateway = components.extra.get("gateway")
    scim.init_app(
        app,
        scim.ScimContext(
            directory_service=(
                Directory(gateway, engine, call_budget_s=settings.sync_budget_s)
                if gateway is not None
                else None
            ),
            tokens=scim.TokenStore(engine),
            audit=audit,
            deprovisioning=components.extra.get("deprovisioning"),
            ack_mode=settings.ack_mode,
        ),
    )
