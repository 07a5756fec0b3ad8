"""Requests per second the sandbox serves on this machine.

    .venv/bin/python bench/sandbox_rps.py [--requests 4000] [--threads 4] [--users 200] [--url URL]

Starts ``python -m scim_bridge sandbox`` in its own process (unless ``--url`` points at a running
one), takes a token, then sends GET /api/v2/users/{id} (4 in 5) and POST /api/v2/users/search
(1 in 5, an EXACT email lookup) from several threads over loopback with keep-alive connections.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import urllib3


@contextmanager
def sandbox_process(users: int) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "scim_bridge", "sandbox", "--port", "0", "--quiet",
         "--users", str(users), "--rate-limit", "1000000000"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def token(http: urllib3.PoolManager, url: str) -> str:
    basic = base64.b64encode(b"sandbox-client:sandbox-secret").decode()
    response = http.request(
        "POST",
        url + "/oauth/token",
        body="grant_type=client_credentials",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    return str(json.loads(response.data)["access_token"])


def run(url: str, total: int, threads: int) -> None:
    setup = urllib3.PoolManager()
    bearer = {"Authorization": f"Bearer {token(setup, url)}"}
    users = json.loads(
        setup.request("GET", url + "/api/v2/users?pageSize=500", headers=bearer).data
    )["entities"]
    latencies: dict[str, list[float]] = {"get": [], "search": []}
    errors: list[int] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        http = urllib3.PoolManager(maxsize=1, retries=False)
        mine: dict[str, list[float]] = {"get": [], "search": []}
        for n in range(index, total, threads):
            user = users[n % len(users)]
            started = time.perf_counter()
            if n % 5 == 4:
                kind = "search"
                body = {"query": [{"type": "EXACT", "fields": ["email"], "value": user["email"]}]}
                response = http.request(
                    "POST", url + "/api/v2/users/search", body=json.dumps(body).encode(),
                    headers={**bearer, "Content-Type": "application/json"},
                )  # fmt: skip
            else:
                kind = "get"
                response = http.request("GET", f"{url}/api/v2/users/{user['id']}", headers=bearer)
            mine[kind].append(time.perf_counter() - started)
            if response.status != 200:
                with lock:
                    errors.append(response.status)
        with lock:
            for kind, values in mine.items():
                latencies[kind].extend(values)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    _report(latencies, errors, threads, elapsed)


def _report(
    latencies: dict[str, list[float]], errors: list[int], threads: int, elapsed: float
) -> None:
    done = sum(len(v) for v in latencies.values())
    print(
        f"{done} requests from {threads} threads in {elapsed:.2f} s: {done / elapsed:.0f} requests/s"
    )
    for kind, values in latencies.items():
        if values:
            ordered = sorted(values)
            p99 = ordered[int(len(ordered) * 0.99) - 1]
            print(
                f"  {kind:6s} n={len(values):5d}  p50 {statistics.median(values) * 1000:.1f} ms"
                f"  p99 {p99 * 1000:.1f} ms"
            )
    if errors:
        print(f"  non-200 answers: {len(errors)} ({sorted(set(errors))})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--url", help="a running sandbox (its rate limit must allow the load)")
    args = parser.parse_args()
    if args.url:
        run(args.url.rstrip("/"), args.requests, args.threads)
        return 0
    with sandbox_process(args.users) as url:
        run(url, args.requests, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
