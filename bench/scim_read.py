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
import statistics
import tempfile
import time
import urllib.parse
from collections.abc import Callable
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()

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
        app = create_app(settings)
        token = TokenStore(app.extensions["scim_bridge"].engine).create("bench")
        gateway = SdkGateway(
            sandbox.url,
            config.client_id,
            config.client_secret,
            budget=SlidingWindowBudget(10_000_000),
        )
        with ServerThread(app) as bridge:
            http = urllib3.PoolManager(retries=False)
            base = bridge.url + "/scim/v2"
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
        app.extensions["scim_bridge"].close()

    print(
        f"{args.requests} requests each, interleaved, sandbox with {args.users} users, loopback HTTP"
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
