"""``bootstrap(settings) -> Components``: the parts built from settings, for the app and commands.

The one place that turns ``Settings`` into a database engine (migrated), the audit log, the
Genesys rate budget and gateway, and the services on top of them (the directory service, the
deprovisioning service and its worker, the token store). ``create_app`` and every command
(``worker``, ``jobs``, ``audit``, ``tokens``, ``doctor``; ``demo`` and ``serve`` through
``create_app``) start here, so that they all build the same things the same way.

Each part is built the first time it is asked for, so that a command needing no Genesys
(``tokens``, ``jobs``, ``audit verify``) needs no Genesys credentials and does not import the SDK,
and ``doctor`` (which needs no database) opens none. A collaborator handed in (tests) is used as
is and left open by ``close``: whoever made it owns it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from scim_bridge.audit import AuditLog
from scim_bridge.config import Settings
from scim_bridge.deprovision import wiring
from scim_bridge.deprovision.wiring import JobEngine
from scim_bridge.directory.service import Directory
from scim_bridge.genesys.budget import BatchedBudget, RateBudget, SlidingWindowBudget
from scim_bridge.genesys.reachability import Reachability
from scim_bridge.store.engine import make_engine, open_existing
from scim_bridge.store.migrate import upgrade
from scim_bridge.store.rate_budget import SlotTable
from scim_bridge.store.schema import schema_version

if TYPE_CHECKING:
    from scim_bridge.admin.metrics import Metrics
    from scim_bridge.genesys.api import Gateway
    from scim_bridge.scim.tokens import TokenStore

# Genesys counts a minute (GENESYS_RATE_LIMIT_WINDOW); a slot is reused one window plus a second
# after it was taken, for the transit time between the grant here and the request's arrival there
# (as genesys/budget.py's in-process budget).
BUDGET_MARGIN_S = 1.0


@dataclasses.dataclass(frozen=True)
class WorkerOptions:
    """How the deprovisioning worker runs in this process (``scim-bridge worker``'s options)."""

    batch: int = 100
    concurrency: int = 4
    lease_s: float = 60.0
    # May start the worker thread in this process (create_app: SCIM_BRIDGE_IN_PROCESS_WORKER).
    in_process: bool = False


@dataclasses.dataclass(init=False, eq=False)
class Components:
    """The parts one process uses, each built on first use (see the module docstring).

    ``create_app`` puts its ``Components`` on ``app.extensions["scim_bridge"]``.
    """

    settings: Settings
    metrics: Metrics | None
    worker_options: WorkerOptions
    started_at: float
    extra: dict[str, Any]  # a part's private state (the SCIM context)
    reachability: Reachability  # whether Genesys answered lately (``/readyz``)

    def __init__(
        self,
        settings: Settings,
        *,
        engine: sa.Engine | None = None,
        audit: AuditLog | None = None,
        gateway: Gateway | None = None,
        metrics: Metrics | None = None,
        migrate: bool = True,
        existing: bool = False,
        share_budget: bool = True,
        audit_logger: logging.Logger | None = None,
        worker: WorkerOptions = WorkerOptions(),  # frozen: one default is safe
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.worker_options = worker
        self.started_at = time.time()
        self.extra = {}
        self.reachability = Reachability()
        self._migrate = migrate
        self._existing = existing
        self._share_budget = share_budget
        self._audit_logger = audit_logger
        self._lock = threading.RLock()
        self._built: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []
        for name, given in (("engine", engine), ("audit", audit), ("gateway", gateway)):
            if given is not None:
                self._built[name] = given
        if gateway is not None:
            gateway.add_observer(self.reachability.observe)

    def _get(self, name: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    # --- the database ---------------------------------------------------------------------
    @property
    def engine(self) -> sa.Engine:
        """The engine for ``DATABASE_URL``, migrated (every process may: migrations lock, and
        skip what has run) unless built with ``migrate=False`` (``audit verify`` reads only)."""
        engine: sa.Engine = self._get("engine", self._make_engine)
        with self._lock:
            if self._migrate:
                upgrade(engine)
                self._migrate = False
        return engine

    def _make_engine(self) -> sa.Engine:
        if self._existing:  # NoDatabase rather than a new file or schema
            engine = open_existing(self.settings.database_url, marker_table=schema_version.name)
        else:
            engine = make_engine(self.settings.database_url)
        self._closers.append(engine.dispose)
        return engine

    @property
    def audit(self) -> AuditLog:
        made: AuditLog = self._get(
            "audit",
            lambda: AuditLog(
                self.engine, logger=self._audit_logger, key=self.settings.audit_hmac_key
            ),
        )
        return made

    @property
    def tokens(self) -> TokenStore:
        from scim_bridge.scim.tokens import TokenStore  # the scim package imports Flask

        made: TokenStore = self._get("tokens", lambda: TokenStore(self.engine))
        return made

    # --- Genesys --------------------------------------------------------------------------
    @property
    def has_genesys(self) -> bool:
        """A Genesys org is configured (or a gateway was handed in)."""
        settings = self.settings
        return "gateway" in self._built or bool(
            settings.genesys_api_host
            and settings.genesys_client_id
            and settings.genesys_client_secret
        )

    @property
    def budget(self) -> RateBudget:
        """The Genesys rate budget: shared through the database (one budget per OAuth client
        however many processes and replicas run), or this process's own (``share_budget=False``:
        ``doctor``, which may run where there is no database yet). Metered when ``metrics``."""
        made: RateBudget = self._get("budget", self._make_budget)
        return made

    def _make_budget(self) -> RateBudget:
        settings = self.settings
        budget: RateBudget
        if self._share_budget:
            slots = SlotTable(
                self.engine,
                f"{settings.genesys_client_id}@{settings.genesys_api_host}",
                settings.rate_limit_per_minute,
                window_s=settings.rate_limit_window_s + BUDGET_MARGIN_S,
            )
            # Slots a few at a time (one transaction for as many as the last half second used):
            # the database stays the arbiter between processes (genesys/budget.py).
            budget = BatchedBudget(
                settings.rate_limit_per_minute,
                slots.take_many,
                reserve=settings.deprovision_reserve,
                prefetch=True,
            )
            self.on_close(budget.close)  # its thread stops before the engine is disposed
        else:
            budget = SlidingWindowBudget(
                settings.rate_limit_per_minute, reserve=settings.deprovision_reserve
            )
        return budget if self.metrics is None else _MeteredBudget(budget, self.metrics)

    @property
    def gateway(self) -> Gateway | None:
        """The Genesys gateway, or None when no Genesys org is configured."""
        if not self.has_genesys:
            return None
        made: Gateway = self._get("gateway", self._make_gateway)
        return made

    def require_gateway(self) -> Gateway:
        """The gateway; ``ConfigError`` naming what is missing when no org is configured."""
        gateway = self.gateway
        if gateway is None:
            self.settings.require_genesys()
            raise AssertionError("unreachable: require_genesys raised")  # pragma: no cover
        return gateway

    def _make_gateway(self) -> Gateway:
        from scim_bridge.genesys.gateway import connect  # the SDK: about 2 s to import

        gateway = connect(self.settings, budget=self.budget)
        self._closers.append(gateway.close)
        gateway.add_observer(self.reachability.observe)
        metrics = self.metrics
        if metrics is not None:
            gateway.add_observer(
                lambda call: metrics.observe_genesys_call(
                    endpoint=call.endpoint,
                    method=call.method,
                    status=call.status,
                    duration_s=call.duration_s,
                )
            )
        return gateway

    # --- services -------------------------------------------------------------------------
    @property
    def directory(self) -> Directory | None:
        """The directory service the SCIM routes call; None without a Genesys org."""
        gateway = self.gateway
        if gateway is None:
            return None
        made: Directory = self._get(
            "directory",
            lambda: Directory(gateway, self.engine, call_budget_s=self.settings.sync_budget_s),
        )
        return made

    @property
    def deprovisioner(self) -> JobEngine | None:
        """Deprovisioning (its service and worker); None without a Genesys org."""
        gateway = self.gateway
        if gateway is None:
            return None
        made: JobEngine = self._get("deprovisioner", lambda: self._make_deprovisioner(gateway))
        return made

    def _make_deprovisioner(self, gateway: Gateway) -> JobEngine:
        options = self.worker_options
        built = wiring.build(
            self.settings,
            engine=self.engine,
            gateway=gateway,
            audit=self.audit,
            start_thread=options.in_process,
            batch=options.batch,
            concurrency=options.concurrency,
            lease_s=options.lease_s,
        )
        self._closers.append(built.stop)
        return built

    def on_close(self, close: Callable[[], None]) -> None:
        """Run ``close`` at ``close()``, before what was built until now is closed (closers run
        in reverse order: a thread that logs through the engine stops before it is disposed)."""
        with self._lock:
            self._closers.append(close)

    def close(self) -> None:
        """Stop the in-process worker, release Genesys connections and the database pool (of
        what was built here; collaborators handed in stay open)."""
        with self._lock:
            closers, self._closers = self._closers, []
        for close in reversed(closers):
            close()


def bootstrap(
    settings: Settings,
    *,
    engine: sa.Engine | None = None,
    audit: AuditLog | None = None,
    gateway: Gateway | None = None,
    metrics: Metrics | None = None,
    migrate: bool = True,
    existing: bool = False,
    share_budget: bool = True,
    audit_logger: logging.Logger | None = None,
    worker: WorkerOptions | None = None,
) -> Components:
    """The process's components for ``settings``; nothing is built until it is first used.

    ``engine``, ``audit``, ``gateway``: collaborators to use instead of building them (tests).
    ``metrics``: observe Genesys calls and rate-budget waits (the app's ``/metrics``).
    ``migrate=False``: use the database as found (``audit verify`` must not create a trail).
    ``existing=True``: ``NoDatabase`` (exit 3) unless ``DATABASE_URL`` already holds the bridge's
    schema: commands that read or act on its state never create one (``jobs``, ``audit``).
    ``share_budget=False``: a rate budget of this process's own, no database (``doctor``).
    ``audit_logger``: where the audit log's lines go (``audit export`` keeps stdout for data).
    """
    return Components(
        settings,
        engine=engine,
        audit=audit,
        gateway=gateway,
        metrics=metrics,
        migrate=migrate,
        existing=existing,
        share_budget=share_budget,
        audit_logger=audit_logger,
        worker=worker or WorkerOptions(),
    )


class _MeteredBudget:
    def __init__(self, budget: RateBudget, metrics: Metrics) -> None:
        self._budget = budget
        self._metrics = metrics

    def acquire(self, deadline: float) -> float:
        waited = self._budget.acquire(deadline)
        self._metrics.rate_budget_wait.observe(waited)
        return waited
