"""A worker process killed with SIGKILL at each step, then restarted: every job ends done exactly
once, Genesys holds the right end state, and the audit chain is intact.

Honest crashes, no hook in the code: the sandbox answers slowly (a latency fault) so that each
step takes long enough to be caught, the test watches the ``jobs`` table from outside, and kills
the ``python -m scim_bridge worker`` process while a job is at the step under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.deprovision.model import SEQUENCES
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.service import DeprovisioningService
from scim_bridge.store.schema import jobs as jobs_table
from tests.deprovision.conftest import make_gateway, users, with_queues
from tests.fixtures.sandbox import Sandbox

pytestmark = pytest.mark.slow

STEPS = [step for step in SEQUENCES["delete"] if step != "done"]
LEASE_S = 1.0


def start_worker(sandbox: Sandbox, db_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GENESYS_API_HOST": sandbox.url,
        "GENESYS_CLIENT_ID": sandbox.client_id,
        "GENESYS_CLIENT_SECRET": sandbox.client_secret,
        "GENESYS_RATE_LIMIT_PER_MINUTE": "100000",
        "DATABASE_URL": db_url,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "scim_bridge", "worker", "--lease", str(LEASE_S)]
    command += ["--poll", "0.05", "--concurrency", "1", "--batch", "10"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_step(engine: sa.Engine, step: str, *, timeout_s: float = 20.0) -> bool:
    end = time.monotonic() + timeout_s
    query = sa.select(sa.func.count()).where(
        jobs_table.c.step == step, jobs_table.c.state == "running"
    )
    while time.monotonic() < end:
        with engine.connect() as conn:
            if conn.execute(query).scalar_one():
                return True
        time.sleep(0.005)
    return False


def all_finished(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return not conn.execute(
            sa.select(sa.func.count()).where(
                jobs_table.c.state.in_(("pending", "running", "waiting"))
            )
        ).scalar_one()


def test_sigkill_at_each_step_then_resume(sandbox: Sandbox, engine: sa.Engine, db_url: str) -> None:
    # SQLite: a kill at every step. PostgreSQL (the multi-process claim path): every other step,
    # to keep the suite inside its time budget.
    steps = STEPS if engine.dialect.name == "sqlite" else STEPS[::2]
    gateway = make_gateway(sandbox)
    audit = AuditLog(engine)
    service = DeprovisioningService(engine, gateway, audit, Policies())
    targets = (
        with_queues(sandbox, gateway)[:2]
        + [u for u in users(sandbox, gateway) if sandbox.user(u)["conversationCount"] > 0][:4]
    )
    targets = list(dict.fromkeys(targets))[:4]
    for uid in targets:
        service.enqueue("delete", uid, requester=Requester(actor="okta", idp="okta"))
    sandbox.faults(latency_ms=40)

    killed_at = []
    for step in steps:
        if all_finished(engine):
            break
        worker = start_worker(sandbox, db_url)
        try:
            if wait_for_step(engine, step):
                worker.send_signal(signal.SIGKILL)
                killed_at.append(step)
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        time.sleep(LEASE_S + 0.1)  # the dead worker's lease runs out

    assert len(killed_at) >= len(steps) - 2, killed_at
    sandbox.faults(latency_ms=0)
    last = start_worker(sandbox, db_url)
    try:
        end = time.monotonic() + 60
        while not all_finished(engine) and time.monotonic() < end:
            time.sleep(0.1)
        last.send_signal(signal.SIGTERM)  # a graceful stop, too
        assert last.wait(20) == 0
    finally:
        if last.poll() is None:
            last.kill()
            last.wait()

    rows = jobs.listing(engine)
    assert sorted(j.user_id for j in rows) == sorted(targets)
    assert all(j.state == "done" for j in rows), [
        (j.user_id, j.state, j.step, j.reason) for j in rows
    ]
    for uid in targets:
        assert sandbox.user(uid)["state"] == "deleted"
        assert sandbox.user(uid)["queues"] == []
        assert jobs.tombstone(engine, uid) is not None
    for job in rows:
        tags = Counter(e.tag for e in audit.events(job_id=job.id, limit=1000))
        for once in (
            Tag.DEPROVISION_JOB_CREATED,
            Tag.DEPROVISION_USER_SNAPSHOT,
            Tag.DEPROVISION_USER_DEACTIVATED,
            Tag.DEPROVISION_HISTORY_CAPTURED,
            Tag.DEPROVISION_USER_DELETED,
            Tag.DEPROVISION_HISTORY_VERIFIED,
            Tag.DEPROVISION_TOMBSTONE_WRITTEN,
            Tag.DEPROVISION_JOB_COMPLETED,
        ):
            assert tags[once] == 1, (job.id, once, tags)
        evidence = job.data["evidence"]
        assert evidence["before"]["sha256"] == evidence["after"]["sha256"]
    assert audit.verify().ok
