"""Build the engine from settings (used by ``create_app``, the worker and the ``jobs`` command)."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from scim_bridge.audit import AuditLog
from scim_bridge.config import Settings
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.service import DeprovisioningService
from scim_bridge.deprovision.worker import Worker, WorkerThread
from scim_bridge.genesys.api import Gateway


@dataclasses.dataclass
class Deprovisioner:
    service: DeprovisioningService
    worker: Worker
    thread: WorkerThread | None = None

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()


def build(
    settings: Settings,
    *,
    engine: sa.Engine,
    gateway: Gateway,
    audit: AuditLog,
    start_thread: bool = False,
    batch: int = 100,
    concurrency: int = 4,
    lease_s: float = 60.0,
) -> Deprovisioner:
    service = DeprovisioningService(
        engine,
        gateway,
        audit,
        Policies.from_settings(settings),
        sync_budget_s=settings.sync_budget_s,
        lease_s=lease_s,
    )
    worker = Worker(service, batch=batch, concurrency=concurrency)
    thread = None
    if start_thread:
        service.set_wake(worker.wake)
        thread = WorkerThread(worker).start()
    return Deprovisioner(service, worker, thread)
