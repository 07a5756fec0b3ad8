"""Fixtures for the engine's tests: a service and a worker on the sandbox and a fresh database."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from scim_bridge.audit import AuditLog
from scim_bridge.config import DeleteBreaker
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.jobs import JobRow
from scim_bridge.deprovision.model import Rules
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.service import JobService
from scim_bridge.deprovision.worker import Worker
from scim_bridge.genesys.budget import SlidingWindowBudget
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.retry import RetryPolicy
from tests.fixtures.sandbox import Sandbox

# Short waits: the sandbox answers in milliseconds and the suite must stay quick.
FAST_RETRY = RetryPolicy(base_delay_s=0.02, max_delay_s=0.2, version_delay_s=0.01)
FAST_RULES = Rules(
    conversation_poll_s=0.2, conversation_wait_max_s=30, backoff_base_s=0.05, backoff_cap_s=0.5
)


def make_gateway(
    sandbox: Sandbox, *, per_minute: int = 1_000_000, retry: RetryPolicy = FAST_RETRY
) -> SdkGateway:
    return SdkGateway(
        sandbox.url,
        sandbox.client_id,
        sandbox.client_secret,
        budget=SlidingWindowBudget(per_minute),
        retry=retry,
        default_deadline_s=20,
    )


class Engine:
    """A service, a worker and the audit log, built for one test with the policies it needs."""

    def __init__(self, sandbox: Sandbox, engine: sa.Engine) -> None:
        self.sandbox = sandbox
        self.engine = engine
        self.audit = AuditLog(engine)
        self.gateway = make_gateway(sandbox)

    def build(
        self,
        *,
        sync_budget_s: float = 10.0,
        worker: bool = True,
        gateway: SdkGateway | None = None,
        clock: Callable[[], float] | None = None,
        rules: Rules = FAST_RULES,
        lease_s: float = 30.0,
        **policy: Any,
    ) -> tuple[JobService, Worker]:
        kwargs: dict[str, Any] = {}
        # The sandbox fixture's async jobs finish in 50 ms: poll them about that often.
        policy.setdefault("history_job_poll_s", 0.05)
        # And gather the verify_before checks of a batch for a moment, not 15 s.
        policy.setdefault("history_batch_window_s", 0.2)
        if clock is not None:
            kwargs["clock"] = clock
        service = JobService(
            self.engine,
            gateway or self.gateway,
            self.audit,
            Policies(**policy),
            sync_budget_s=sync_budget_s,
            rules=rules,
            lease_s=lease_s,
            **kwargs,
        )
        w = Worker(service, poll_s=0.05, concurrency=2)
        if worker:
            service.set_wake(w.wake)
        return service, w


@pytest.fixture
def deprov(sandbox: Sandbox, engine: sa.Engine) -> Engine:
    return Engine(sandbox, engine)


def users(sandbox: Sandbox, gateway: SdkGateway) -> list[str]:
    page = gateway.list_users(page_size=100, state="active")
    return [u.id for u in page.items]


def with_queues(sandbox: Sandbox, gateway: SdkGateway, *, minimum: int = 1) -> list[str]:
    return [uid for uid in users(sandbox, gateway) if len(sandbox.user(uid)["queues"]) >= minimum]


def breaker(limit: int, window_s: float = 3600) -> DeleteBreaker:
    return DeleteBreaker(limit, window_s)


def finish(worker: Worker, job_id: str, *, timeout_s: float = 30.0) -> JobRow:
    """Run the worker until the job is no longer open (it may be waiting for a retry time)."""
    end = time.monotonic() + timeout_s
    while True:
        worker.run_until_idle(timeout_s=timeout_s)
        job = jobs.find(worker.engine, job_id)
        assert job is not None
        if job.state not in ("pending", "running", "waiting") or time.monotonic() > end:
            return job
        time.sleep(0.05)
