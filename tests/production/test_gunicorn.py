"""The production server for real (issue 6 item 1): ``gunicorn -c gunicorn.conf.py wsgi:app`` as a
subprocess on a loopback port, two workers, against the sandbox.

- ``/metrics`` sums the SCIM request counters of both workers (prometheus-client multiprocess
  mode, set up by gunicorn.conf.py), whichever worker answers the scrape;
- SIGTERM stops it within the graceful timeout with exit code 0, the in-process deprovisioning
  worker hands its job back (not left ``running``), and a ``scim-bridge worker`` finishes it;
- ``wsgi.py`` refuses to start without the Genesys settings, naming the missing variables.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.deprovision import jobs
from scim_bridge.scim import TokenStore
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade
from tests.fixtures.sandbox import Sandbox
from tests.production.servers import (
    bridge_env,
    free_port,
    processes,
    start_gunicorn,
    start_worker,
    stop,
    wait_healthy,
)

pytestmark = pytest.mark.slow

GRACEFUL_TIMEOUT_S = 15
PATCH_INACTIVE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}


def _scim_requests(metrics_text: str) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == "scim_bridge_scim_requests_total":
                counts[(s.labels["endpoint"], s.labels["method"], s.labels["status"])] += int(
                    s.value
                )
    return counts


def _access_log_pids(log: Path, path_prefix: str) -> set[int]:
    pids = set()
    for line in log.read_text(errors="replace").splitlines():
        if '"gunicorn.access"' not in line:
            continue
        entry = json.loads(line)  # the access log is JSON, one object per line
        if entry["path"].startswith(path_prefix):
            pids.add(entry["pid"])
    return pids


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[tuple[str, sa.Engine]]:
    db_url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        yield db_url, engine
    finally:
        engine.dispose()


def _served_by_both_workers(base: str, auth: dict[str, str], log: Path) -> int:
    """Enough parallel requests on fresh connections that both workers serve some; how many
    were sent."""
    sent = 0
    lock = threading.Lock()

    def get_users() -> None:
        nonlocal sent
        for _ in range(10):
            r = requests.get(f"{base}/scim/v2/Users?count=5", headers=auth, timeout=30)
            assert r.status_code == 200, r.text
            with lock:
                sent += 1

    for _round in range(10):
        threads = [threading.Thread(target=get_users) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        if len(_access_log_pids(log, "/scim/v2/Users")) >= 2:
            break
    assert len(_access_log_pids(log, "/scim/v2/Users")) == 2, "one worker served everything"
    return sent


def _wait_running_in_a_worker_thread(engine: sa.Engine, user_id: str) -> None:
    """The user's job is running, claimed by the worker thread of a gunicorn worker."""
    end = time.monotonic() + 20
    while time.monotonic() < end:
        job = jobs.listing(engine, user_id=user_id)[0]
        if job.state == "running" and (job.claimed_by or "").startswith("worker:"):
            break
        time.sleep(0.05)
    assert job.state == "running", (job.state, job.step, job.claimed_by)
    assert job.claimed_by is not None
    assert job.claimed_by.startswith("worker:")  # the worker thread of a gunicorn worker


def test_gunicorn_serves_aggregates_metrics_and_stops_gracefully(
    sandbox: Sandbox, sqlite_engine: tuple[str, sa.Engine], tmp_path: Path
) -> None:
    db_url, engine = sqlite_engine
    token = TokenStore(engine).create("okta-test")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    scratch = tmp_path / "tmp"  # gunicorn.conf.py makes its metrics directory in here
    scratch.mkdir()
    env = bridge_env(
        sandbox,
        db_url,
        SCIM_BRIDGE_BIND=f"127.0.0.1:{port}",
        SCIM_BRIDGE_WORKERS="2",
        SCIM_BRIDGE_THREADS="4",
        SCIM_BRIDGE_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT_S),
        # A DELETE is left unfinished by its request, for the in-process worker thread.
        SCIM_SYNC_BUDGET_S="1",
        GENESYS_RATE_LIMIT_PER_MINUTE="5000",
        TMPDIR=str(scratch),
    )
    log = tmp_path / "gunicorn.log"
    auth = {"Authorization": f"Bearer {token}"}
    with processes() as started:
        server = start_gunicorn(env, log)
        started.append(server)
        wait_healthy(base, server)

        sent = Counter[str](GET=_served_by_both_workers(base, auth, log))

        listing = requests.get(f"{base}/scim/v2/Users?count=50", headers=auth, timeout=30).json()
        sent["GET"] += 1
        active = [u["id"] for u in listing["Resources"] if u["active"]]
        r = requests.patch(
            f"{base}/scim/v2/Users/{active[0]}",
            json=PATCH_INACTIVE,
            headers={**auth, "Content-Type": "application/scim+json"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.json()["active"] is False

        # Every scrape, whichever worker answers it, reports what both workers served.
        for _ in range(4):
            counts = _scim_requests(requests.get(f"{base}/metrics", timeout=10).text)
            assert counts[("/scim/v2/Users", "GET", "200")] == sent["GET"]
            assert counts[("/scim/v2/Users/<user_id>", "PATCH", "200")] == 1
        assert len(_access_log_pids(log, "/metrics")) >= 1

        # A DELETE whose job the in-process worker thread is running at SIGTERM: slow Genesys
        # answers keep the job going well past the request's inline budget.
        sandbox.faults(latency_ms=400)
        r = requests.delete(f"{base}/scim/v2/Users/{active[1]}", headers=auth, timeout=30)
        assert r.status_code == 204, r.text
        _wait_running_in_a_worker_thread(engine, active[1])

        stopping = time.monotonic()
        code = stop(server, timeout_s=GRACEFUL_TIMEOUT_S)
        took = time.monotonic() - stopping
        assert code == 0, log.read_text()[-3000:]
        assert took < GRACEFUL_TIMEOUT_S
        # The metrics directory gunicorn.conf.py made is gone with the master.
        assert list(scratch.iterdir()) == []

        # The job was handed back at a step boundary, not left running under a dead lease...
        job = jobs.listing(engine, user_id=active[1])[0]
        assert job.state in ("pending", "waiting"), (job.state, job.step)
        assert job.lease_token is None
        assert job.step != "done"
        # ...and a worker process resumes it to the end.
        sandbox.faults(latency_ms=0)
        finisher = start_worker(env, tmp_path / "worker.log", "--once", "--lease", "5")
        started.append(finisher)
        assert finisher.wait(60) == 0, (tmp_path / "worker.log").read_text()[-3000:]

    job = jobs.listing(engine, user_id=active[1])[0]
    assert job.state == "done", (job.state, job.step, job.reason)
    assert sandbox.user(active[1])["state"] == "deleted"
    audit = AuditLog(engine)
    tags = Counter(e.tag for e in audit.events(job_id=job.id, limit=1000))
    assert tags[Tag.DEPROVISION_JOB_COMPLETED] == 1
    assert tags[Tag.DEPROVISION_USER_DELETED] == 1
    assert audit.verify().ok


def test_wsgi_refuses_to_start_without_genesys_settings(sandbox: Sandbox, tmp_path: Path) -> None:
    port = free_port()
    env = bridge_env(
        sandbox,
        f"sqlite:///{tmp_path / 'bridge.db'}",
        SCIM_BRIDGE_BIND=f"127.0.0.1:{port}",
        GENESYS_API_HOST=None,
        GENESYS_CLIENT_ID=None,
        GENESYS_CLIENT_SECRET=None,
    )
    assert not any(name.startswith("GENESYS_") for name in env)
    log = tmp_path / "gunicorn.log"
    with processes() as started:
        server = start_gunicorn(env, log)
        started.append(server)
        try:
            code = server.wait(60)
        except subprocess.TimeoutExpired:
            code = None
    output = log.read_text(errors="replace")
    assert code not in (None, 0), output[-2000:]
    assert "missing configuration" in output
    for name in (
        "GENESYS_REGION or GENESYS_API_HOST",
        "GENESYS_CLIENT_ID",
        "GENESYS_CLIENT_SECRET",
    ):
        assert name in output
    # Nothing answers on the port.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
