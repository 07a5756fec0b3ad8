"""Two bridge replicas and two workers on PostgreSQL under an offboarding load.

    .venv/bin/python bench/replicas.py [--deletes 300] [--rate 3000] [--window 60] [--clients 16]

One sandbox org whose rate limit is ``--rate`` requests per ``--window`` seconds; two
``gunicorn -c gunicorn.conf.py wsgi:app`` replicas (one worker each, no in-process job worker) and
two ``python -m scim_bridge worker`` processes, all on one fresh PostgreSQL database, told the same
budget (``GENESYS_RATE_LIMIT_PER_MINUTE`` / ``GENESYS_RATE_LIMIT_WINDOW``). ``--clients`` threads
send the SCIM DELETEs, alternating between the replicas, then the bench waits for every job to end.

The sandbox limits per token and every process has its own, so its 429 count alone would not show
an overspend: a WSGI middleware in front of it notes when each API request arrives, and the bench
prints the requests per window (all processes together) against the budget. A job "ran more than
once" when any of its once-only audit events was written twice or Genesys received two DELETEs for
its user. PostgreSQL: ``SCIM_BRIDGE_TEST_PG`` (maintenance database URL) or the loopback default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from scim_bridge.audit import AuditLog
from scim_bridge.sandbox import SandboxConfig, create_app
from scim_bridge.sandbox.control import SandboxControl
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.scim.tokens import TokenStore
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade
from tests.fixtures.database import create_pg_database, drop_pg_database
from tests.production.servers import (
    ONCE_PER_DELETE,
    ArrivalRecorder,
    free_port,
    max_in_window,
    start_gunicorn,
    start_worker,
    stop_all,
    wait_healthy,
)

# A job still to finish is in one of these states.
OPEN_STATES = ("pending", "running", "waiting")


@dataclasses.dataclass
class _Load:
    """What the SCIM clients saw."""

    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    failures: list[str] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


@dataclasses.dataclass
class _Run:
    """One run's figures: timings, process exit codes, the sandbox's and the database's view."""

    began_at: float = 0.0
    began_at_monotonic: float = 0.0
    acked: float = 0.0
    finished: float = 0.0
    codes: object = None
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    load: _Load = dataclasses.field(default_factory=_Load)
    job_states: Counter[str] = dataclasses.field(default_factory=Counter)
    tag_counts: list[Any] = dataclasses.field(default_factory=list)
    steps_by: Counter[str] = dataclasses.field(default_factory=Counter)
    chain_ok: bool = False


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deletes", type=int, default=300)
    parser.add_argument("--rate", type=int, default=3000, help="Genesys requests per window")
    parser.add_argument("--window", type=float, default=60.0, help="the rate limit window, s")
    parser.add_argument("--clients", type=int, default=16, help="concurrent SCIM DELETEs")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this directory")
    return parser.parse_args()


def _by_endpoint(stats: dict[str, Any], status: str) -> str:
    """Where the sandbox answered ``status``: a per-token rate limit, or the async jobs' own."""
    found = {e: by[status] for e, by in stats["endpoints"].items() if status in by}
    return ", ".join(f"{e}: {n}" for e, n in sorted(found.items())) or "none"


def main() -> None:
    args = _parse_args()
    db_url = create_pg_database()
    config = SandboxConfig(
        users=int(args.deletes * 1.3) + 20,
        seed=7,
        rate_limit_per_minute=args.rate,
        group_queue_members=False,  # as measured: no membership the drain retries for minutes
    )
    app = create_app(config)
    recorder = ArrivalRecorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    engine = make_engine(db_url)
    procs: list[subprocess.Popen[bytes]] = []
    run = _Run()
    try:
        with ServerThread(app) as sandbox, tempfile.TemporaryDirectory() as scratch:
            tmp = args.logs or Path(scratch)
            tmp.mkdir(parents=True, exist_ok=True)
            control = SandboxControl(sandbox.url)
            control.faults(rate_limit_window_s=args.window)
            upgrade(engine)
            token = TokenStore(engine).create("bench")
            env = _environment(args, sandbox.url, config, db_url)
            bases = _start(env, tmp, procs)
            auth = {"Authorization": f"Bearer {token}"}
            targets = _targets(bases[0], auth, args.deletes)
            first_call = len(recorder.calls)
            _offboard(run, args, targets, bases, auth)
            _wait_for_jobs(engine)
            run.finished = time.monotonic() - run.began_at_monotonic
            run.codes = stop_all(procs, timeout_s=45)
            run.stats = control.stats()
    finally:
        stop_all(procs, timeout_s=45)
        _read_database(run, engine)
        engine.dispose()
        drop_pg_database(db_url)
    if not _report(args, run, recorder.calls[first_call:]):
        raise SystemExit(1)


def _environment(
    args: argparse.Namespace, sandbox_url: str, config: SandboxConfig, db_url: str
) -> dict[str, str]:
    """Every process's environment: the sandbox org, the shared budget, the one database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GENESYS_", "SCIM_", "DATABASE_URL", "PROMETHEUS_"))
    }
    env.update(
        GENESYS_API_HOST=sandbox_url,
        GENESYS_CLIENT_ID=config.client_id,
        GENESYS_CLIENT_SECRET=config.client_secret,
        GENESYS_RATE_LIMIT_PER_MINUTE=str(args.rate),
        GENESYS_RATE_LIMIT_WINDOW=f"{args.window}s",
        DATABASE_URL=db_url,
        LOG_LEVEL="WARNING",
    )
    return env


def _start(env: dict[str, str], tmp: Path, procs: list[subprocess.Popen[bytes]]) -> list[str]:
    """Two replicas (their base URLs, once healthy) and two workers, appended to ``procs``."""
    bases = []
    for i in range(2):
        port = free_port()
        bases.append(f"http://127.0.0.1:{port}")
        replica_env = {
            **env,
            "SCIM_BRIDGE_BIND": f"127.0.0.1:{port}",
            "SCIM_BRIDGE_WORKERS": "1",
            "SCIM_BRIDGE_THREADS": "8",
            "SCIM_BRIDGE_IN_PROCESS_WORKER": "false",
        }
        procs.append(start_gunicorn(replica_env, tmp / f"replica-{i}.log"))
    for i in range(2):
        procs.append(
            start_worker(env, tmp / f"worker-{i}.log", "--poll", "0.2", "--concurrency", "4")
        )
    for base, proc in zip(bases, procs, strict=False):
        wait_healthy(base, proc)
    return bases


def _targets(base: str, auth: dict[str, str], wanted: int) -> list[str]:
    """The ids of ``wanted`` active users, read through the bridge."""
    targets: list[str] = []
    index = 1
    while len(targets) < wanted:
        page = requests.get(
            f"{base}/scim/v2/Users?count=100&startIndex={index}", headers=auth, timeout=120
        ).json()
        targets += [u["id"] for u in page["Resources"] if u["active"]]
        index += page["itemsPerPage"]
        if index > page["totalResults"]:
            break
    if len(targets) < wanted:
        raise SystemExit(f"only {len(targets)} active users")
    return targets[:wanted]


def _offboard(
    run: _Run,
    args: argparse.Namespace,
    targets: list[str],
    bases: list[str],
    auth: dict[str, str],
) -> None:
    """``--clients`` threads send the DELETEs, alternating between the replicas."""
    load = run.load

    def offboard(part: list[str], base: str) -> None:
        with requests.Session() as http:
            for uid in part:
                r = http.delete(f"{base}/scim/v2/Users/{uid}", headers=auth, timeout=120)
                with load.lock:
                    load.statuses[r.status_code] += 1
                    if r.status_code != 204 and len(load.failures) < 5:
                        load.failures.append(f"{r.status_code} {r.text[:300]}")

    run.began_at_monotonic = time.monotonic()
    run.began_at = time.time()
    clients = [
        threading.Thread(target=offboard, args=(targets[i :: args.clients], bases[i % 2]))
        for i in range(args.clients)
    ]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    run.acked = time.monotonic() - run.began_at_monotonic


def _wait_for_jobs(engine: sa.Engine) -> None:
    query = sa.text("SELECT count(*) FROM jobs WHERE state = ANY(:s)")
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.execute(query, {"s": list(OPEN_STATES)}).scalar_one():
                return
        time.sleep(0.2)


def _read_database(run: _Run, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        run.job_states = Counter(
            dict(conn.execute(sa.text("SELECT state, count(*) FROM jobs GROUP BY state")).all())
        )
        run.tag_counts = list(
            conn.execute(
                sa.text(
                    "SELECT job_id, tag, count(*) FROM audit_events WHERE job_id IS NOT NULL "
                    "GROUP BY job_id, tag"
                )
            ).all()
        )
        run.steps_by = Counter(
            dict(
                conn.execute(
                    sa.text("SELECT split_part(actor, ':', 1), count(*) FROM job_steps GROUP BY 1")
                ).all()
            )
        )
    run.chain_ok = AuditLog(engine).verify().ok


def _report(args: argparse.Namespace, run: _Run, calls: list[Any]) -> bool:
    """Print the figures; True when the budget held, no job ran twice and the chain verifies."""
    times = sorted(c[0] for c in calls)
    once = {str(t) for t in ONCE_PER_DELETE}
    twice = {job for job, tag, n in run.tag_counts if tag in once and n > 1}
    deletes = Counter(
        path.rsplit("/", 1)[1]
        for _, method, path, _status in calls
        if method == "DELETE" and path.startswith("/api/v2/users/")
    )
    twice |= {uid for uid, n in deletes.items() if n > 1}
    peak = max_in_window(times, args.window)
    print(f"2 replicas (gunicorn, 1 worker x 8 threads) + 2 workers on PostgreSQL; {args.deletes} "
          f"SCIM DELETEs from {args.clients} clients; budget {args.rate} req / {args.window:g}s")  # fmt: skip
    print()
    print(f"{'window':>10} {'Genesys requests':>17} {'budget':>7}")
    end_t = run.began_at + run.finished
    t = run.began_at
    while t < end_t:
        n = sum(1 for x in times if t <= x < t + args.window)
        print(f"{t - run.began_at:>9.0f}s {n:>17} {args.rate:>7}")
        t += args.window
    print()
    rows = _rows(args, run, times, peak, len(twice))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for failure in run.load.failures:
        print("  e.g.", failure)
    return not (peak > args.rate or twice or run.stats["rate_limited"] or not run.chain_ok)


def _rows(
    args: argparse.Namespace, run: _Run, times: list[float], peak: int, twice: int
) -> list[tuple[str, str]]:
    lifetime = args.window + 1.0  # the bridge's slot lifetime (bootstrap.BUDGET_MARGIN_S)
    mean = len(times) / max(run.finished, 1e-9)
    steps = f"{run.steps_by.get('inline', 0)} / {run.steps_by.get('worker', 0)}"
    jobs_total = sum(run.job_states.values())
    states = ", ".join(f"{s} {n}" for s, n in sorted(run.job_states.items()))
    return [
        ("peak requests in any sliding window", f"{peak} / {args.rate}"),
        ("Genesys requests (API, tokens excluded)", f"{len(times)}"),
        ("  per deleted user", f"{len(times) / max(args.deletes, 1):.1f}"),
        ("mean rate", f"{mean:.1f}/s (budget {args.rate / lifetime:.1f}/s: {lifetime:g}s slots)"),
        ("bound (requests / budget rate)", f"{len(times) / (args.rate / lifetime):.1f}s"),
        ("wall: all DELETEs answered", f"{run.acked:.1f}s"),
        ("wall: all jobs ended", f"{run.finished:.1f}s"),
        ("SCIM answers", ", ".join(f"{s}: {n}" for s, n in sorted(run.load.statuses.items()))),
        ("jobs", f"{jobs_total} ({states})"),
        ("jobs run more than once", f"{twice}"),
        (
            "429s received (sandbox)",
            f"{run.stats['rate_limited']} ({_by_endpoint(run.stats, '429')})",
        ),
        ("steps run inline / by workers", steps),
        ("audit chain", "verified" if run.chain_ok else "BROKEN"),
        ("exit codes (replicas, workers)", f"{run.codes}"),
    ]


if __name__ == "__main__":
    main()
