"""Deprovisioning's service, worker and in-process thread, from settings (``bootstrap`` calls it)."""

from __future__ import annotations

import dataclasses
import threading

import sqlalchemy as sa

from scim_bridge.audit import AuditLog
from scim_bridge.config import Settings
from scim_bridge.deprovision.model import Rules
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.service import JobService
from scim_bridge.deprovision.worker import Worker, WorkerThread
from scim_bridge.genesys.api import Gateway

_START_LOCK = threading.Lock()


@dataclasses.dataclass
class JobEngine:
    """The engine that runs jobs: the service requests go through, the worker that finishes
    them and, in a single-process server, the worker's thread."""

    service: JobService
    worker: Worker
    thread: WorkerThread | None = None
    in_process: bool = False  # may start the worker thread (SCIM_BRIDGE_IN_PROCESS_WORKER)

    def wake(self) -> None:
        """Wake the in-process worker, starting its thread the first time."""
        with _START_LOCK:
            if self.thread is None and self.in_process:
                self.thread = WorkerThread(self.worker).start()
        self.worker.wake()

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
) -> JobEngine:
    service = JobService(
        engine,
        gateway,
        audit,
        Policies.from_settings(settings),
        sync_budget_s=settings.sync_budget_s,
        lease_s=lease_s,
        rules=Rules(conversation_wait_max_s=settings.active_conversation_wait_s),
    )
    worker = Worker(service, batch=batch, concurrency=concurrency)
    built = JobEngine(service, worker, in_process=start_thread)
    if start_thread:
        # Started on the first job a request leaves unfinished, not at import or app creation.
        service.set_wake(built.wake)
    return built
