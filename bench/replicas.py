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
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import requests
import sqlalchemy as sa
from psycopg import sql

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.sandbox import SandboxConfig, create_app
from scim_bridge.sandbox.control import SandboxControl
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.scim.tokens import TokenStore
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
PG_ADMIN_URL = os.environ.get(
    "SCIM_BRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ONCE = (
    Tag.DEPROVISION_JOB_CREATED,
    Tag.DEPROVISION_USER_SNAPSHOT,
    Tag.DEPROVISION_USER_DEACTIVATED,
    Tag.DEPROVISION_HISTORY_CAPTURED,
    Tag.DEPROVISION_USER_DELETED,
    Tag.DEPROVISION_HISTORY_VERIFIED,
    Tag.DEPROVISION_TOMBSTONE_WRITTEN,
    Tag.DEPROVISION_JOB_COMPLETED,
)


class ArrivalRecorder:
    """WSGI middleware: (arrival time, method, path, status) of each ``/api/`` request."""

    def __init__(self, wrapped: Callable[..., Any]) -> None:
        self._wrapped = wrapped
        self._lock = threading.Lock()
        self.calls: list[tuple[float, str, str, int]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = str(environ.get("PATH_INFO", ""))
        if not path.startswith("/api/"):
            return self._wrapped(environ, start_response)
        arrived, method = time.time(), str(environ.get("REQUEST_METHOD"))

        def recording(status: str, headers: Any, *args: Any) -> Any:
            with self._lock:
                self.calls.append((arrived, method, path, int(status.split(maxsplit=1)[0])))
            return start_response(status, headers, *args)

        return self._wrapped(environ, recording)


def max_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_admin() -> psycopg.Connection[Any]:
    url = sa.make_url(PG_ADMIN_URL).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_all(procs: list[subprocess.Popen[bytes]]) -> list[int | None]:
    """One SIGTERM each (a second could land in a Python process's interpreter shutdown, where
    the default action applies again), a wait, then SIGKILL to whatever is left of the session."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for p in procs:
        try:
            codes.append(p.wait(45))
        except subprocess.TimeoutExpired:
            codes.append(None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        if p.poll() is None:
            p.wait(10)
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deletes", type=int, default=300)
    parser.add_argument("--rate", type=int, default=3000, help="Genesys requests per window")
    parser.add_argument("--window", type=float, default=60.0, help="the rate limit window, s")
    parser.add_argument("--clients", type=int, default=16, help="concurrent SCIM DELETEs")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this directory")
    args = parser.parse_args()

    db_name = f"scim_bridge_bench_{uuid.uuid4().hex[:12]}"
    with pg_admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    db_url = (
        sa.make_url(PG_ADMIN_URL)
        .set(drivername="postgresql+psycopg", database=db_name)
        .render_as_string(hide_password=False)
    )
    config = SandboxConfig(
        users=int(args.deletes * 1.3) + 20, seed=7, rate_limit_per_minute=args.rate
    )
    app = create_app(config)
    recorder = ArrivalRecorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    engine = make_engine(db_url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with ServerThread(app) as sandbox, tempfile.TemporaryDirectory() as scratch:
            tmp = args.logs or Path(scratch)
            tmp.mkdir(parents=True, exist_ok=True)
            control = SandboxControl(sandbox.url)
            control.faults(rate_limit_window_s=args.window)
            upgrade(engine)
            token = TokenStore(engine).create("bench")
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("GENESYS_", "SCIM_", "DATABASE_URL", "PROMETHEUS_"))
            }
            env.update(
                GENESYS_API_HOST=sandbox.url,
                GENESYS_CLIENT_ID=config.client_id,
                GENESYS_CLIENT_SECRET=config.client_secret,
                GENESYS_RATE_LIMIT_PER_MINUTE=str(args.rate),
                GENESYS_RATE_LIMIT_WINDOW=f"{args.window}s",
                DATABASE_URL=db_url,
                LOG_LEVEL="WARNING",
            )
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
                command = [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"]
                procs.append(start(command, replica_env, tmp / f"replica-{i}.log"))
            for i in range(2):
                command = [sys.executable, "-m", "scim_bridge", "worker", "--poll", "0.2"]
                command += ["--concurrency", "4", "--batch", "100"]
                procs.append(start(command, env, tmp / f"worker-{i}.log"))
            for base, proc in zip(bases, procs, strict=False):
                while True:
                    if proc.poll() is not None:
                        raise SystemExit(f"replica exited with {proc.returncode}")
                    with contextlib.suppress(requests.RequestException):
                        if requests.get(f"{base}/healthz", timeout=1).ok:
                            break
                    time.sleep(0.1)

            auth = {"Authorization": f"Bearer {token}"}
            targets: list[str] = []
            index = 1
            while len(targets) < args.deletes:
                page = requests.get(
                    f"{bases[0]}/scim/v2/Users?count=100&startIndex={index}",
                    headers=auth,
                    timeout=120,
                ).json()
                targets += [u["id"] for u in page["Resources"] if u["active"]]
                index += page["itemsPerPage"]
                if index > page["totalResults"]:
                    break
            targets = targets[: args.deletes]
            if len(targets) < args.deletes:
                raise SystemExit(f"only {len(targets)} active users")

            statuses: Counter[int] = Counter()
            failures: list[str] = []
            lock = threading.Lock()

            def offboard(part: list[str], base: str) -> None:
                with requests.Session() as http:
                    for uid in part:
                        r = http.delete(f"{base}/scim/v2/Users/{uid}", headers=auth, timeout=120)
                        with lock:
                            statuses[r.status_code] += 1
                            if r.status_code != 204 and len(failures) < 5:
                                failures.append(f"{r.status_code} {r.text[:300]}")

            first_call = len(recorder.calls)
            began = time.monotonic()
            began_at = time.time()
            clients = [
                threading.Thread(target=offboard, args=(targets[i :: args.clients], bases[i % 2]))
                for i in range(args.clients)
            ]
            for t in clients:
                t.start()
            for t in clients:
                t.join()
            acked = time.monotonic() - began
            open_states = ("pending", "running", "waiting")
            query = sa.text("SELECT count(*) FROM jobs WHERE state = ANY(:s)")
            deadline = time.monotonic() + 3600
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    if not conn.execute(query, {"s": list(open_states)}).scalar_one():
                        break
                time.sleep(0.2)
            finished = time.monotonic() - began
            codes = stop_all(procs)
            stats = control.stats()
    finally:
        stop_all(procs)
        with engine.connect() as conn:
            job_states = Counter(
                dict(conn.execute(sa.text("SELECT state, count(*) FROM jobs GROUP BY state")).all())
            )
            tag_counts = conn.execute(
                sa.text(
                    "SELECT job_id, tag, count(*) FROM audit_events WHERE job_id IS NOT NULL "
                    "GROUP BY job_id, tag"
                )
            ).all()
            steps_by = Counter(
                dict(
                    conn.execute(
                        sa.text(
                            "SELECT split_part(actor, ':', 1), count(*) FROM job_steps GROUP BY 1"
                        )
                    ).all()
                )
            )
        chain_ok = AuditLog(engine).verify().ok
        engine.dispose()
        with pg_admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name))
            )

    # --- the figures ---
    calls = recorder.calls[first_call:]
    times = sorted(c[0] for c in calls)
    lifetime = args.window + 1.0  # the bridge's slot lifetime (app.BUDGET_MARGIN_S)
    once = {str(t) for t in ONCE}
    twice = {job for job, tag, n in tag_counts if tag in once and n > 1}
    deletes = Counter(
        path.rsplit("/", 1)[1]
        for _, method, path, _status in calls
        if method == "DELETE" and path.startswith("/api/v2/users/")
    )
    twice |= {uid for uid, n in deletes.items() if n > 1}
    peak = max_in_window(times, args.window)
    jobs_total = sum(job_states.values())
    print(f"2 replicas (gunicorn, 1 worker x 8 threads) + 2 workers on PostgreSQL; {args.deletes} "
          f"SCIM DELETEs from {args.clients} clients; budget {args.rate} req / {args.window:g}s")  # fmt: skip
    print()
    print(f"{'window':>10} {'Genesys requests':>17} {'budget':>7}")
    end_t = began_at + finished
    t = began_at
    while t < end_t:
        n = sum(1 for x in times if t <= x < t + args.window)
        print(f"{t - began_at:>9.0f}s {n:>17} {args.rate:>7}")
        t += args.window
    print()
    mean = len(times) / max(finished, 1e-9)
    steps = f"{steps_by.get('inline', 0)} / {steps_by.get('worker', 0)}"
    rows = [
        ("peak requests in any sliding window", f"{peak} / {args.rate}"),
        ("Genesys requests (API, tokens excluded)", f"{len(times)}"),
        ("  per deleted user", f"{len(times) / max(args.deletes, 1):.1f}"),
        ("mean rate", f"{mean:.1f}/s (budget {args.rate / lifetime:.1f}/s: {lifetime:g}s slots)"),
        ("bound (requests / budget rate)", f"{len(times) / (args.rate / lifetime):.1f}s"),
        ("wall: all DELETEs answered", f"{acked:.1f}s"),
        ("wall: all jobs ended", f"{finished:.1f}s"),
        ("SCIM answers", ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))),
        ("jobs", f"{jobs_total} ({', '.join(f'{s} {n}' for s, n in sorted(job_states.items()))})"),
        ("jobs run more than once", f"{len(twice)}"),
        ("429s received (sandbox)", f"{stats['rate_limited']}"),
        ("steps run inline / by workers", steps),
        ("audit chain", "verified" if chain_ok else "BROKEN"),
        ("exit codes (replicas, workers)", f"{codes}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for failure in failures:
        print("  e.g.", failure)
    if peak > args.rate or twice or stats["rate_limited"] or not chain_ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
