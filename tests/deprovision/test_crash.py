"""A worker process killed with SIGKILL at every step of every sequence, then restarted: every
job ends done exactly once, Genesys holds the right end state, and the audit chain is intact.

Deterministic crashes: the worker is started with ``runner.KILL_AT_STEP_ENV`` naming a step, and
kills itself at the first job that has made that step's Genesys calls and is about to record
them (the moment that leaves the most to redo). No wall-clock race: the test waits for the
process to die and checks it died of SIGKILL there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.deprovision.model import SEQUENCES, Action
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.runner import KILL_AT_STEP_ENV
from scim_bridge.deprovision.service import JobService
from scim_bridge.store.schema import jobs as jobs_table
from tests.deprovision.conftest import make_gateway, users, with_queues
from tests.fixtures.sandbox import Sandbox
from tests.production.servers import ONCE_PER_DELETE

pytestmark = pytest.mark.slow

LEASE_S = 1.0
# Bounds, not races: each is what a stuck worker would exceed, never what a slow one needs (a
# worker's start alone took 29 s at load average 23).
KILL_TIMEOUT_S = 240.0
FINISH_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0


def start_worker(
    sandbox: Sandbox, db_url: str, *, kill_at: str | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GENESYS_API_HOST": sandbox.url,
        "GENESYS_CLIENT_ID": sandbox.client_id,
        "GENESYS_CLIENT_SECRET": sandbox.client_secret,
        "GENESYS_RATE_LIMIT_PER_MINUTE": "100000",
        "DATABASE_URL": db_url,
        "LOG_LEVEL": "WARNING",
        "HISTORY_JOB_POLL": "0.05",  # the sandbox's async details jobs take 50 ms
    }
    env.pop(KILL_AT_STEP_ENV, None)
    if kill_at is not None:
        env[KILL_AT_STEP_ENV] = kill_at
    command = [sys.executable, "-m", "scim_bridge", "worker", "--lease", str(LEASE_S)]
    command += ["--poll", "0.05", "--concurrency", "1", "--batch", "10"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def open_jobs(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    jobs_table.c.state.in_(("pending", "running", "waiting"))
                )
            ).scalar_one()
        )


def kill_at_each_step(sandbox: Sandbox, db_url: str, action: Action) -> list[str]:
    """One worker per step of ``action``'s sequence, each dying at that step."""
    killed = []
    for step in SEQUENCES[action]:
        if step == "done":
            continue
        worker = start_worker(sandbox, db_url, kill_at=step)
        try:
            code = worker.wait(KILL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert code == -signal.SIGKILL, (action, step, code)
        killed.append(step)
    return killed


def finish_all(sandbox: Sandbox, db_url: str, engine: sa.Engine) -> None:
    """A worker with no crash point finishes what is left, then stops on SIGTERM."""
    last = start_worker(sandbox, db_url)
    try:
        end = time.monotonic() + FINISH_TIMEOUT_S
        while open_jobs(engine) and time.monotonic() < end:
            time.sleep(0.1)
        last.send_signal(signal.SIGTERM)  # a graceful stop, too
        assert last.wait(STOP_TIMEOUT_S) == 0
    finally:
        if last.poll() is None:
            last.kill()
            last.wait()
    assert open_jobs(engine) == 0


ONCE: dict[Action, tuple[Tag, ...]] = {
    "deactivate": (
        Tag.DEPROVISION_JOB_CREATED,
        Tag.DEPROVISION_USER_SNAPSHOT,
        Tag.DEPROVISION_USER_DEACTIVATED,
        Tag.DEPROVISION_JOB_COMPLETED,
    ),
    "reactivate": (
        Tag.DEPROVISION_JOB_CREATED,
        Tag.DEPROVISION_USER_SNAPSHOT,
        Tag.DEPROVISION_USER_REACTIVATED,
        Tag.DEPROVISION_ROLES_RESTORED,  # every seeded active user holds roles (issue 12)
        Tag.DEPROVISION_FOOTPRINT_VERIFIED,
        Tag.DEPROVISION_JOB_COMPLETED,
    ),
    "delete": ONCE_PER_DELETE,
}


def _assert_active_with_queues_back(sandbox: Sandbox, queues: dict[str, list[str]]) -> None:
    for uid, before in queues.items():
        assert sandbox.user(uid)["state"] == "active"
        # The queues the deactivation removed are back, each once.
        assert sorted(q["id"] for q in sandbox.user(uid)["queues"]) == before


def _assert_footprints_back(sandbox: Sandbox, footprints: dict[str, Any]) -> None:
    """The footprint the deactivation took away, whatever step the restore died at (issue 12)."""
    for uid, before in footprints.items():
        assert sandbox.user(uid)["footprint"] == before


def test_sigkill_at_every_step_of_every_sequence_then_resume(
    sandbox: Sandbox, engine: sa.Engine, db_url: str
) -> None:
    gateway = make_gateway(sandbox)
    audit = AuditLog(engine)
    service = JobService(engine, gateway, audit, Policies())
    targets = (
        with_queues(sandbox, gateway)[:2]
        + [u for u in users(sandbox, gateway) if sandbox.user(u)["conversationCount"] > 0][:2]
    )
    targets = list(dict.fromkeys(targets))[:3]
    queues = {uid: sorted(q["id"] for q in sandbox.user(uid)["queues"]) for uid in targets}
    footprints = {uid: sandbox.user(uid)["footprint"] for uid in targets}
    okta = Requester(actor="okta", idp="okta")

    # Deactivate, reactivate, then delete the same users: each sequence, a kill at each step.
    # PostgreSQL (the multi-process claim path) runs the longest sequence only, to keep the suite
    # inside its time budget; SQLite runs all three.
    actions: tuple[Action, ...] = ("deactivate", "reactivate", "delete")
    if engine.dialect.name != "sqlite":
        actions = ("delete",)
    for action in actions:
        for uid in targets:
            service.enqueue(action, uid, requester=okta)
        killed = kill_at_each_step(sandbox, db_url, action)
        assert killed == [s for s in SEQUENCES[action] if s != "done"]
        finish_all(sandbox, db_url, engine)
        rows = [j for j in jobs.listing(engine) if j.action == action]
        assert sorted(j.user_id for j in rows) == sorted(targets)
        assert all(j.state == "done" for j in rows), [
            (j.user_id, j.state, j.step, j.reason) for j in rows
        ]
        for job in rows:
            tags = Counter(e.tag for e in audit.events(job_id=job.id, limit=1000))
            for once in ONCE[action]:
                assert tags[once] == 1, (action, job.id, once, tags)
        if action == "reactivate":
            _assert_active_with_queues_back(sandbox, queues)
            _assert_footprints_back(sandbox, footprints)

    for uid in targets:
        assert sandbox.user(uid)["state"] == "deleted"
        assert sandbox.user(uid)["queues"] == []
        assert jobs.tombstone(engine, uid) is not None
    for job in jobs.listing(engine):
        if job.action == "delete":
            before, after = job.history.before, job.history.after
            assert before is not None
            assert after is not None
            assert before.sha256 == after.sha256
    assert audit.verify().ok


def test_sigkill_in_the_restore_after_a_history_mismatch_then_resume(
    sandbox: Sandbox, engine: sa.Engine, db_url: str
) -> None:
    """The mismatch branch (restore, confirm_restored: issue 10) killed at each of its steps:
    the user ends restored and inactive, never active again but inside the undelete, the job
    held once with its evidence, and every event of the branch recorded exactly once."""
    gateway = make_gateway(sandbox)
    audit = AuditLog(engine)
    service = JobService(engine, gateway, audit, Policies())
    sandbox.faults(purge_history_on_delete=True)
    uid = next(u for u in users(sandbox, gateway) if sandbox.user(u)["conversationCount"] > 0)
    job, _ = service.enqueue("delete", uid, requester=Requester(actor="okta", idp="okta"))

    for step in ("restore", "confirm_restored"):
        worker = start_worker(sandbox, db_url, kill_at=step)
        try:
            code = worker.wait(KILL_TIMEOUT_S)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert code == -signal.SIGKILL, (step, code)
    finish_all(sandbox, db_url, engine)

    held = jobs.find(engine, job.id)
    assert held is not None
    assert (held.state, held.step, held.reason) == ("held", "verify_before", "history-mismatch")
    states = [state for state, _ in sandbox.state_history(uid)]
    # A restore done again after a crash finds the user restored already: no second undelete.
    assert states == ["active", "inactive", "deleted", "active", "inactive"]
    tags = Counter(e.tag for e in audit.events(job_id=job.id, limit=1000))
    for once in (
        Tag.DEPROVISION_USER_DEACTIVATED,
        Tag.DEPROVISION_USER_DELETED,
        Tag.DEPROVISION_HISTORY_MISMATCH,
        Tag.DEPROVISION_USER_RESTORED,
        Tag.DEPROVISION_JOB_HELD,
    ):
        assert tags[once] == 1, (once, tags)
    assert audit.verify().ok
