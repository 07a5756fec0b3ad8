"""SCIM read latency through the bridge beside the same Genesys call made directly with the SDK.

One run, one sandbox: ``GET /Users/{id}`` and ``GET /Users?filter=userName eq "..."`` through the
bridge over real HTTP (loopback; served as deployed by default, ``gunicorn -c gunicorn.conf.py``
with keep-alive, one worker; ``--server thread`` for werkzeug's ServerThread), and the same read
made directly the way a plain SDK user makes it: ``UsersApi.get_user`` / ``post_users_search``
(EXACT on email, the body the bridge sends) on a stock ``ApiClient`` logged in with
``get_client_credentials_token``, its own keep-alive pool, answers deserialised into models.
The calls are interleaved call by call (the order alternating), so that every path sees the same
moments of a shared machine's load; each HTTP client reuses its connections. Prints median and
p99 in milliseconds and their ratios, and the bridge's own Genesys call through its gateway
(no HTTP hop, no Flask: what the read costs inside the bridge), timed in the same rounds.
The bridge's budget is the shared one in its database (as deployed), large enough (100,000 a
minute) that no call waits for a slot.

``--genesys-latency-ms N`` makes the sandbox answer every call N ms later (its ``latency_ms``
fault), as a Genesys region tens of milliseconds away does: both paths wait it, so the ratios show
what the bridge adds beside a real round trip. The report also prints what the bridge adds in
milliseconds (bridge minus direct), the figure that does not depend on how fast the sandbox is.

    PYTHONPATH=. .venv/bin/python bench/scim_read.py [--requests 500] [--server gunicorn|thread]
        [--genesys-latency-ms 0]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import PureCloudPlatformClientV2 as sdk  # noqa: N813 - the direct path is a plain SDK user
import urllib3
from _bridge import sandbox_settings

from scim_bridge.app import create_app
from scim_bridge.config import Settings
from scim_bridge.genesys.budget import SlidingWindowBudget
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import Criterion
from scim_bridge.sandbox import SandboxConfig
from scim_bridge.sandbox import create_app as create_sandbox
from scim_bridge.sandbox.control import SandboxControl
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.scim.tokens import TokenStore

BRIDGE_BUDGET = 100_000


Pair = tuple[float, float]  # (median, p99) in ms
# (read, bridge, direct, the gateway alone, an HTTP hop to the bridge alone (GET /healthz),
#  (mean ms in Flask, mean ms of the Genesys exchange))
Row = tuple[str, Pair, Pair, Pair, Pair, tuple[float, float]]


def _stats(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def warm_up(calls: Sequence[Callable[[], object]], n: int) -> None:
    for _ in range(max(10, n // 20)):
        for call in calls:
            call()


def measure(calls: Sequence[Callable[[], object]], n: int) -> list[tuple[float, float]]:
    """Interleaved: each round times one call of each, in an order that rotates from round to
    round, so that all see the same moments of a shared machine's load. (median, p99) each."""
    timed: list[list[float]] = [[] for _ in calls]
    order = list(range(len(calls)))
    for i in range(n):
        for which in order[i % len(order) :] + order[: i % len(order)]:
            start = time.perf_counter()
            calls[which]()
            timed[which].append((time.perf_counter() - start) * 1000)
    return [_stats(samples) for samples in timed]


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
    port = _free_port()
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
        _wait_for(url + "/healthz")
        yield url, token
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# The sandbox in a process of its own, served by gunicorn (gthread, keep-alive) as Genesys serves
# its API: each path's calls cross a process and reuse a connection, as they would to Genesys.
_SANDBOX_SERVER = """
import sys
from gunicorn.app.base import BaseApplication
from scim_bridge.sandbox import SandboxConfig, create_app

class Sandbox(BaseApplication):
    def load_config(self):
        for key, value in dict(bind=sys.argv[1], workers=1, worker_class="gthread", threads=4,
                               keepalive=30, accesslog=None, loglevel="warning").items():
            self.cfg.set(key, value)

    def load(self):
        return create_app(SandboxConfig(users=int(sys.argv[2]), rate_limit_per_minute=10_000_000))

Sandbox().run()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(url: str) -> None:
    probe = urllib3.PoolManager(retries=False)
    for _ in range(600):
        try:
            probe.request("GET", url, timeout=1)
        except urllib3.exceptions.HTTPError:
            time.sleep(0.1)
        else:
            return


@contextlib.contextmanager
def sandbox_served(args: argparse.Namespace, config: SandboxConfig) -> Iterator[str]:
    """The sandbox's URL: in a process of its own (gunicorn, keep-alive; the default), or on a
    ServerThread in this process (werkzeug: a new connection and thread per call)."""
    if args.sandbox == "thread":
        with ServerThread(create_sandbox(config)) as sandbox:
            yield sandbox.url
        return
    port = _free_port()
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SANDBOX_SERVER, f"127.0.0.1:{port}", str(config.users)],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url + "/api/v2/users")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


_TIMED = re.compile(
    r"^scim_bridge_(scim_request|genesys_call)_duration_seconds_(sum|count)"
    r'\{endpoint="([^"]+)",method="(?:GET|POST)"\} ([0-9.e+-]+)$',
    re.MULTILINE,
)


def app_times(http: urllib3.PoolManager, bridge_url: str) -> dict[tuple[str, str, str], float]:
    """The bridge's own clocks (``/metrics``): (kind, endpoint, sum|count) -> value, where kind is
    ``scim_request`` (the request inside Flask, before_request to after_request) or
    ``genesys_call`` (the HTTP exchange with Genesys, in the transport)."""
    text = http.request("GET", bridge_url + "/metrics").data.decode()
    return {(m[1], m[3], m[2]): float(m[4]) for m in _TIMED.finditer(text)}


def mean_ms(
    before: dict[tuple[str, str, str], float],
    after: dict[tuple[str, str, str], float],
    kind: str,
    endpoint: str,
) -> float:
    total = after.get((kind, endpoint, "sum"), 0.0) - before.get((kind, endpoint, "sum"), 0.0)
    count = after.get((kind, endpoint, "count"), 0.0) - before.get((kind, endpoint, "count"), 0.0)
    return total / count * 1000 if count else float("nan")


def report(args: argparse.Namespace, rows: list[Row]) -> None:
    print(
        f"{args.requests} requests each, interleaved, sandbox with {args.users} users, "
        f"loopback HTTP, sandbox in a {args.sandbox} answering {args.genesys_latency_ms} ms "
        f"late, bridge served by {args.server}, direct: the SDK's UsersApi"
    )
    print(
        f"{'read':<22}{'bridge median':>15}{'bridge p99':>12}{'direct median':>15}{'direct p99':>12}"
        f"{'p50 ratio':>11}{'p99 ratio':>11}{'added p50':>11}{'added p99':>11}"
    )
    for name, (bm, bp), (dm, dp), _, _, _ in rows:
        print(
            f"{name:<22}{bm:>13.2f}ms{bp:>10.2f}ms{dm:>13.2f}ms{dp:>10.2f}ms"
            f"{bm / dm:>10.2f}x{bp / dp:>10.2f}x{bm - dm:>9.2f}ms{bp - dp:>9.2f}ms"
        )
    print("Where a bridge read's time goes (the bridge's own clocks, /metrics: means):")
    for name, _, _, (gm, gp), (hm, hp), (in_app, genesys) in rows:
        print(
            f"  {name}: in Flask {in_app:.2f} ms, of which the Genesys exchange {genesys:.2f} ms; "
            f"in the same rounds, the bridge's gateway call alone (from this process) p50 "
            f"{gm:.2f} / p99 {gp:.2f} ms, an HTTP hop to the bridge (GET /healthz) {hm:.2f} / "
            f"{hp:.2f} ms"
        )


def search_body(email: str) -> dict[str, object]:
    """The search the bridge makes for a ``userName eq`` filter (``gateway.search_users`` with
    the directory's page size of 25), as a plain SDK user would send it."""
    return {
        "query": [
            {"type": "EXACT", "fields": ["email"], "value": email.lower()},
            {"type": "EXACT", "fields": ["state"], "values": ["active", "inactive"]},
        ],
        "pageSize": 25,
        "pageNumber": 1,
        "sortOrder": "ASC",
        "sortBy": "name",
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument(
        "--genesys-latency-ms",
        type=int,
        default=0,
        help="the sandbox answers every call this much later (0: as fast as it can)",
    )
    parser.add_argument(
        "--server",
        choices=("thread", "gunicorn"),
        default="gunicorn",
        help="serve the bridge as deployed (gunicorn, keep-alive; the default) or from a "
        "werkzeug ServerThread (a new connection and thread per request)",
    )
    parser.add_argument(
        "--sandbox",
        choices=("process", "thread"),
        default="process",
        help="serve the sandbox from a process of its own (gunicorn, keep-alive, as Genesys "
        "serves: the default) or from a ServerThread in the bench's process (werkzeug closes "
        "every connection, so every Genesys call of either path opens one)",
    )
    return parser.parse_args()


def timed_rows(
    args: argparse.Namespace, bridge_url: str, token: str, users: Any, gateway: SdkGateway
) -> list[Row]:
    """Each read through the bridge, directly (``users``: the SDK's UsersApi) and through the
    bridge's gateway alone, interleaved; with the bridge's own clocks around the timed rounds."""
    http = urllib3.PoolManager(retries=False)
    base = bridge_url + "/scim/v2"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}
    first = users.get_users(page_size=1, state="active").entities[0]
    email = first.email or ""
    query = urllib.parse.urlencode({"filter": f'userName eq "{email}"'})

    def bridge_get() -> object:
        response = http.request("GET", f"{base}/Users/{first.id}", headers=headers)
        assert response.status == 200, response.data
        return response

    def bridge_filter() -> object:
        response = http.request("GET", f"{base}/Users?{query}", headers=headers)
        assert response.status == 200, response.data
        assert b'"totalResults":1' in response.data, response.data
        return response

    def healthz() -> object:  # the hop alone: gunicorn and Flask, no token, no Genesys
        response = http.request("GET", f"{bridge_url}/healthz")
        assert response.status == 200, response.data
        return response

    criteria = (Criterion(type="EXACT", fields=("email",), value=email.lower()),)
    body = search_body(email)

    def row(name: str, calls: Sequence[Callable[[], object]], where: tuple[str, str]) -> Row:
        warm_up(calls, args.requests)
        before = app_times(http, bridge_url)
        bridge, direct, alone, hop = measure([*calls, healthz], args.requests)
        after = app_times(http, bridge_url)
        inside = tuple(
            mean_ms(before, after, kind, at)
            for kind, at in zip(("scim_request", "genesys_call"), where, strict=True)
        )
        return name, bridge, direct, alone, hop, (inside[0], inside[1])

    return [
        row("GET /Users/{id}", (bridge_get, lambda: users.get_user(first.id), lambda: gateway.get_user(first.id)), ("/scim/v2/Users/<user_id>", "/api/v2/users/{userId}")),
        row("filter userName eq", (bridge_filter, lambda: users.post_users_search(body), lambda: gateway.search_users(criteria, page_size=25)), ("/scim/v2/Users", "/api/v2/users/search")),
    ]  # fmt: skip


def main() -> int:
    args = parse_args()
    config = SandboxConfig(users=args.users, rate_limit_per_minute=10_000_000)
    with sandbox_served(args, config) as sandbox_url:
        if args.genesys_latency_ms:
            SandboxControl(sandbox_url).faults(latency_ms=args.genesys_latency_ms)
        settings = sandbox_settings(sandbox_url, config, rate=BRIDGE_BUDGET)
        gateway = SdkGateway(
            sandbox_url,
            config.client_id,
            config.client_secret,
            budget=SlidingWindowBudget(10_000_000),
        )
        api = sdk.ApiClient(host=sandbox_url)
        users = sdk.UsersApi(
            api.get_client_credentials_token(config.client_id, config.client_secret)
        )
        serve = (
            served_by_gunicorn(settings, sandbox_url)
            if args.server == "gunicorn"
            else served_in_thread(settings)
        )
        with serve as (bridge_url, token):
            rows = timed_rows(args, bridge_url, token, users, gateway)
        gateway.close()

    report(args, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
