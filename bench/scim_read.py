"""SCIM read latency through the bridge beside the same Genesys call made directly.

One run, one sandbox: ``GET /Users/{id}`` and ``GET /Users?filter=userName eq "..."`` through the
bridge over real HTTP (loopback, a ServerThread), and ``get_user`` / ``search_users`` (EXACT on
email) through the SDK gateway against the same sandbox, interleaved call by call. Prints median
and p99 in milliseconds and their ratios. The bridge's budget is the shared one in its database
(as deployed), large enough (100,000 a minute) that no call waits for a slot.

    .venv/bin/python bench/scim_read.py [--requests 500]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import urllib3

from scim_bridge.app import create_app
from scim_bridge.config import Settings
from scim_bridge.genesys.budget import SlidingWindowBudget
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import Criterion
from scim_bridge.sandbox import SandboxConfig
from scim_bridge.sandbox import create_app as create_sandbox
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.scim.tokens import TokenStore

BRIDGE_BUDGET = 100_000


Pair = tuple[float, float]  # (median, p99) in ms


def _stats(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def measure_pair(
    bridge: Callable[[], object], direct: Callable[[], object], n: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Interleaved: each round times one bridge call and one direct call, in alternating order,
    so that both see the same moments of a shared machine's load."""
    for _ in range(max(10, n // 20)):
        bridge()
        direct()
    timed: tuple[list[float], list[float]] = ([], [])
    for i in range(n):
        pair = ((0, bridge), (1, direct)) if i % 2 == 0 else ((1, direct), (0, bridge))
        for which, call in pair:
            start = time.perf_counter()
            call()
            timed[which].append((time.perf_counter() - start) * 1000)
    return _stats(timed[0]), _stats(timed[1])


@contextlib.contextmanager
def served_in_thread(settings: Settings) -> Iterator[tuple[str, str]]:
    """The bridge app on a ServerThread (werkzeug: a new connection and thread per request)."""
    app = create_app(settings)
    token = TokenStore(app.extensions["scim_bridge"].engine).create("bench")
    try:
        with ServerThread(app) as bridge:
            yield bridge.url, token
    finally:
        app.extensions["scim_bridge"].close()


@contextlib.contextmanager
def served_by_gunicorn(settings: Settings, sandbox_url: str) -> Iterator[tuple[str, str]]:
    """The bridge as deployed (``gunicorn -c gunicorn.conf.py wsgi:app``: one worker, keep-alive)."""
    app = create_app(settings)  # migrates the database and stores the token
    token = TokenStore(app.extensions["scim_bridge"].engine).create("bench")
    app.extensions["scim_bridge"].close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYS_", "SCIM_"))}
    env.update(
        GENESYS_API_HOST=sandbox_url,
        GENESYS_CLIENT_ID=settings.genesys_client_id or "",
        GENESYS_CLIENT_SECRET=settings.genesys_client_secret or "",
        GENESYS_RATE_LIMIT_PER_MINUTE=str(settings.rate_limit_per_minute),
        DATABASE_URL=settings.database_url,
        LOG_LEVEL="WARNING",
        SCIM_BRIDGE_BIND=f"127.0.0.1:{port}",
        SCIM_BRIDGE_WORKERS="1",
        SCIM_BRIDGE_IN_PROCESS_WORKER="false",
    )
    root = Path(__file__).resolve().parents[1]
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        probe = urllib3.PoolManager(retries=False)
        for _ in range(600):
            try:
                if probe.request("GET", url + "/healthz", timeout=1).status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                time.sleep(0.1)
        yield url, token
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def report(args: argparse.Namespace, rows: list[tuple[str, Pair, Pair]]) -> None:
    print(
        f"{args.requests} requests each, interleaved, sandbox with {args.users} users, "
        f"loopback HTTP, bridge served by {args.server}"
    )
    print(
        f"{'read':<22}{'bridge median':>15}{'bridge p99':>12}{'direct median':>15}{'direct p99':>12}"
        f"{'p50 ratio':>11}{'p99 ratio':>11}"
    )
    for name, (bm, bp), (dm, dp) in rows:
        print(
            f"{name:<22}{bm:>13.2f}ms{bp:>10.2f}ms{dm:>13.2f}ms{dp:>10.2f}ms"
            f"{bm / dm:>10.2f}x{bp / dp:>10.2f}x"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument(
        "--server",
        choices=("thread", "gunicorn"),
        default="thread",
        help="serve the bridge from a ServerThread, or as deployed (gunicorn, keep-alive)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    config = SandboxConfig(users=args.users, rate_limit_per_minute=10_000_000)
    with ServerThread(create_sandbox(config)) as sandbox:
        db = Path(tempfile.mkdtemp(prefix="scim-bench-")) / "bridge.db"
        settings = Settings(
            genesys_api_host=sandbox.url,
            genesys_client_id=config.client_id,
            genesys_client_secret=config.client_secret,
            database_url=f"sqlite:///{db}",
            worker_in_process=False,
            rate_limit_per_minute=BRIDGE_BUDGET,
            log_level="WARNING",
        )
        gateway = SdkGateway(
            sandbox.url,
            config.client_id,
            config.client_secret,
            budget=SlidingWindowBudget(10_000_000),
        )
        serve = (
            served_by_gunicorn(settings, sandbox.url)
            if args.server == "gunicorn"
            else served_in_thread(settings)
        )
        with serve as (bridge_url, token):
            http = urllib3.PoolManager(retries=False)
            base = bridge_url + "/scim/v2"
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}
            first = gateway.list_users(page_size=1, state="active").items[0]
            email = first.email or ""
            query = urllib.parse.urlencode({"filter": f'userName eq "{email}"'})

            def bridge_get() -> object:
                response = http.request("GET", f"{base}/Users/{first.id}", headers=headers)
                assert response.status == 200, response.data
                return response

            def bridge_filter() -> object:
                response = http.request("GET", f"{base}/Users?{query}", headers=headers)
                assert response.status == 200, response.data
                return response

            criteria = (Criterion(type="EXACT", fields=("email",), value=email.lower()),)
            rows = [
                ("GET /Users/{id}", *measure_pair(bridge_get, lambda: gateway.get_user(first.id), args.requests)),
                ("filter userName eq", *measure_pair(bridge_filter, lambda: gateway.search_users(criteria), args.requests)),
            ]  # fmt: skip
        gateway.close()

    report(args, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
