"""Memory of the production server: gunicorn with 4 workers, ``preload_app`` on vs off, side by side.

    .venv/bin/python bench/memory.py [--workers 4] [--warm 25]

Starts a sandbox, then two ``gunicorn -c gunicorn.conf.py wsgi:app`` servers at once on one SQLite
file (``SCIM_BRIDGE_PRELOAD=true`` and ``false``), warms every worker of each with SCIM requests
(``GET /Users``, a ``userName eq`` filter, ``GET /Users/{id}``) until each worker has served
``--warm`` of them, then reads ``/proc/PID/smaps_rollup`` of each master and its workers.

PSS (proportional set size) is the honest total: a page shared by n processes counts 1/n in each.
The RSS sum counts shared pages once per process, so it overstates what preloading costs. USS is
each process's private memory. Pages shared with every Python process on the machine (the
interpreter binary) are split among all of them, both servers included; they are a few MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from scim_bridge.sandbox import SandboxConfig, create_app
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.scim.tokens import TokenStore
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rollup(pid: int) -> dict[str, int]:
    """kB figures of /proc/PID/smaps_rollup."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0])
    return out


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(c) for c in text)
    return sorted(found)


def served_by(log: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        if '"gunicorn.access"' in line:
            entry = json.loads(line)
            if entry["path"].startswith("/scim/"):
                counts[entry["pid"]] = counts.get(entry["pid"], 0) + 1
    return counts


Server = tuple[subprocess.Popen[bytes], str, Path]  # the master, its base URL, its log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--warm", type=int, default=25, help="SCIM requests each worker serves")
    args = parser.parse_args()

    config = SandboxConfig(users=200, seed=1, rate_limit_per_minute=10_000_000)
    with ServerThread(create_app(config)) as sandbox, tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(db_url)
        upgrade(engine)
        token = TokenStore(engine).create("bench")
        engine.dispose()
        env = _environment(sandbox.url, config, db_url, args.workers)
        servers: dict[str, Server] = {}
        try:
            for mode in ("preload", "no preload"):
                servers[mode] = _start(mode, env, Path(tmp))
            booted = _wait_booted(servers)
            ids = [
                u["id"]
                for u in requests.get(
                    f"{servers['preload'][1]}/scim/v2/Users?count=20",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                ).json()["Resources"]
            ]
            for _proc, base, log in servers.values():
                warm(base, token, ids, log, workers=args.workers, each=args.warm)
            time.sleep(1.0)
            rows = [_measure(mode, proc, log) for mode, (proc, _base, log) in servers.items()]
        finally:
            _stop(servers)
    _print(args, rows, booted)


def _environment(
    sandbox_url: str, config: SandboxConfig, db_url: str, workers: int
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GENESYS_", "SCIM_", "DATABASE_URL", "PROMETHEUS_"))
    }
    env.update(
        GENESYS_API_HOST=sandbox_url,
        GENESYS_CLIENT_ID=config.client_id,
        GENESYS_CLIENT_SECRET=config.client_secret,
        GENESYS_RATE_LIMIT_PER_MINUTE="100000",
        DATABASE_URL=db_url,
        LOG_LEVEL="WARNING",
        SCIM_BRIDGE_WORKERS=str(workers),
        SCIM_BRIDGE_IN_PROCESS_WORKER="false",
    )
    return env


def _start(mode: str, env: dict[str, str], tmp: Path) -> Server:
    port = free_port()
    log = tmp / f"{mode.replace(' ', '-')}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env={
                **env,
                "SCIM_BRIDGE_BIND": f"127.0.0.1:{port}",
                "SCIM_BRIDGE_PRELOAD": "true" if mode == "preload" else "false",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, f"http://127.0.0.1:{port}", log


def _wait_booted(servers: dict[str, Server]) -> dict[str, float]:
    """Seconds from the start until each server answered /healthz."""
    booted = {}
    started = time.monotonic()
    for mode, (proc, base, _log) in servers.items():
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{mode}: gunicorn exited with {proc.returncode}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            time.sleep(0.1)
        booted[mode] = time.monotonic() - started
    return booted


def _measure(mode: str, proc: subprocess.Popen[bytes], log: Path) -> tuple[Any, ...]:
    pids = [proc.pid, *children(proc.pid)]
    figures = [rollup(p) for p in pids]
    return (
        mode,
        len(pids),
        sum(f["Rss"] for f in figures) / 1024,
        sum(f["Pss"] for f in figures) / 1024,
        sum(f["Private_Clean"] + f["Private_Dirty"] for f in figures) / 1024,
        rollup(proc.pid)["Pss"] / 1024,
        sum(f["Pss"] for f in figures[1:]) / 1024 / max(len(figures) - 1, 1),
        min(served_by(log).values()),
    )


def _stop(servers: dict[str, Server]) -> None:
    for proc, _base, _log in servers.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc, _base, _log in servers.values():
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _print(args: argparse.Namespace, rows: list[tuple[Any, ...]], booted: dict[str, float]) -> None:
    print(f"gunicorn, {args.workers} workers (gthread), each worker warmed with >= {args.warm} "
          "SCIM requests; MiB")  # fmt: skip
    print(f"{'mode':<11} {'procs':>5} {'RSS sum':>9} {'PSS sum':>9} {'USS sum':>9} "
          f"{'master PSS':>11} {'PSS/worker':>11} {'healthy s':>10}")  # fmt: skip
    for mode, procs, rss, pss, uss, master, per_worker, _served in rows:
        print(f"{mode:<11} {procs:>5} {rss:>9.1f} {pss:>9.1f} {uss:>9.1f} "
              f"{master:>11.1f} {per_worker:>11.1f} {booted[mode]:>10.1f}")  # fmt: skip
    (_, _, rss_on, pss_on, *_), (_, _, rss_off, pss_off, *_) = rows
    print(f"preload / no preload: PSS {pss_on / pss_off:.2f}, RSS {rss_on / rss_off:.2f}")


def warm(base: str, token: str, ids: list[str], log: Path, *, workers: int, each: int) -> None:
    """SCIM requests on fresh connections, in parallel, until every worker served ``each``."""
    headers = {"Authorization": f"Bearer {token}"}
    paths = [
        "/scim/v2/Users?count=10",
        "/scim/v2/Users?filter=userName%20eq%20%22nobody%40example.com%22",
        *(f"/scim/v2/Users/{uid}" for uid in ids[:5]),
    ]
    end = time.monotonic() + 120

    def burst() -> None:
        for path in paths:
            requests.get(f"{base}{path}", headers=headers, timeout=30).raise_for_status()

    while time.monotonic() < end:
        served = served_by(log)
        if len(served) >= workers and min(served.values()) >= each:
            return
        threads = [threading.Thread(target=burst) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    raise SystemExit(f"could not warm every worker of {base}: {served_by(log)}")


if __name__ == "__main__":
    main()
