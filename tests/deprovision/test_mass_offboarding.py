"""Mass offboarding over SCIM/HTTP against the sandbox (issue 11): an IdP's DELETEs, answered as
soon as access is cut, then the worker proves the whole history of the batch with one async
details job a side, and every user's evidence says what it covered."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import urllib3

from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.proof import JOB_API
from scim_bridge.deprovision.worker import Worker
from scim_bridge.sandbox.server import ServerThread
from tests.fixtures.bridge import close_bridge, make_bridge
from tests.fixtures.sandbox import Sandbox

USERS = 16
CLIENTS = 4


def _active(sandbox: Sandbox, bridge: Any, count: int) -> list[str]:
    listing = bridge.get("/Users?count=200&filter=active eq true").get_json()
    ids = [r["id"] for r in listing["Resources"]]
    assert len(ids) >= count, "the sandbox has too few active users"
    return ids[:count]


def test_an_idps_deletes_share_one_async_job_a_side(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.reset(users=40, history_days=1095)
    sandbox.faults(async_job_delay_s=0.05, data_availability_lag_s=3600)
    # The gathering window never ends within the test (no wall-clock race): the checks go when
    # no other delete is on its way to its own.
    bridge = make_bridge(sandbox, tmp_path, history_job_poll_s=0.05, history_batch_window_s=600.0)
    components = bridge.app.extensions["scim_bridge"]
    service = components.deprovisioner.service
    worker = Worker(service, poll_s=0.05, concurrency=2)
    service.set_wake(worker.wake)  # a worker is there; it runs once the IdP has its answers
    try:
        ids = _active(sandbox, bridge, USERS)
        counts = {uid: sandbox.user(uid)["conversationCount"] for uid in ids}
        statuses = _delete_over_http(bridge, ids)
        assert statuses == Counter({204: USERS})
        # Access was cut before each answer; the proofs wait for the worker (but for a first
        # request that found no other delete at its check, and ran its own inline).
        assert all(sandbox.user(uid)["state"] in ("inactive", "deleted") for uid in ids)
        worker.run_until_idle(timeout_s=120)
    finally:
        close_bridge(bridge)

    found = [
        jobs.find(bridge.engine, j.id)
        for uid in ids
        for j in jobs.listing(bridge.engine, user_id=uid)
    ]
    assert [j.state for j in found if j is not None] == ["done"] * USERS
    assert all(sandbox.user(uid)["state"] == "deleted" for uid in ids)
    lake = Counter(
        next(
            p["job_id"]
            for p in jobs.dump_data(j)["evidence"]["before"]["parts"]
            if p["api"] == JOB_API
        )
        for j in found
        if j is not None
    )
    # One async job for the checks the worker gathered, at most one more for a request alone.
    assert len(lake) <= 2
    assert max(lake.values()) >= USERS - 1
    submitted = sandbox.async_jobs()
    assert len(submitted) <= 4  # a side each
    for job in found:
        assert job is not None
        before = jobs.dump_data(job)["evidence"]["before"]
        assert before["count"] == counts[job.user_id]


def _delete_over_http(bridge: Any, ids: list[str]) -> Counter[int]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    pending = list(ids)
    with ServerThread(bridge.app) as server:
        http = urllib3.PoolManager(maxsize=CLIENTS, retries=False)
        headers = {"Authorization": f"Bearer {bridge.token}"}

        def client() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    uid = pending.pop()
                status = http.request(
                    "DELETE", f"{server.url}/scim/v2/Users/{uid}", headers=headers
                ).status
                with lock:
                    statuses[status] += 1

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        http.clear()
    return statuses
