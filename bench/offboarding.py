"""Mass offboarding against the sandbox: N deletes at a Genesys rate budget.

    .venv/bin/python bench/offboarding.py --users 1000 --single 20 --rate 3000
    .venv/bin/python bench/offboarding.py --http --users 2000 --rate 6000 --clients 8

The proof covers the whole history (HISTORY_SINCE, five years): the sandbox seeds three years
(sparse before 90 days), its async details jobs take ``--async-delay`` seconds (15 by default: a
realistic few-seconds-to-a-minute job) and its data lake lags ``--lag`` seconds (an hour). The
bridge polls them with its defaults (``HISTORY_JOB_POLL`` 10 s, then as long as the last job took)
and its worker gathers the checks before the delete for ``--gather`` seconds
(``HISTORY_BATCH_WINDOW``, 15 s) into one async job.

The budget defaults to Genesys's 300 requests a minute (``--rate``): the wall time of the batched
phase is compared with the bound that budget sets (its calls / budget).

The sandbox enforces the budget (429 past it, counted per 60 s window). Genesys calls are counted
by the sandbox (``/sandbox/stats``). Two phases in either mode: ``--single`` deletes one by one
(each job alone, run inline to the end: its own history queries), then the rest at once, finished
by the worker, which shares the user reads and history queries of a round.

Default mode: the deprovisioning service in-process (``request()`` / ``enqueue()``), with an
in-process sliding-window budget.

``--http``: the production path. The bridge is ``create_app(Settings(...))`` served over HTTP on
loopback, with its database-backed shared rate budget (61 s window); a SCIM token from
``TokenStore``; the in-process worker off and a ``Worker`` on the app's deprovisioning service
running the rest, woken by the requests as the in-process one would be. ``--clients`` threads send
``DELETE /scim/v2/Users/{id}`` as an IdP does, and every answer that is not 2xx is a failure
surfaced to the IdP. Wall time runs from the first DELETE until the last job is done.

``--http --deactivate``: the same with Okta's ``PATCH active=false`` instead of ``DELETE`` (a busy
IdP push of deactivations: snapshot, deactivation, sessions and drain; no history, no delete).

Printed: wall time beside the bound the budget sets (calls / budget) and the floor of a sliding
window (the budget may be spent at once, then once per window), calls per user alone and batched
(every call the sandbox answered but the token's, footprint and async polling included) and where
they go (user reads, footprint, queue listings, removals, state, delete, sessions, history, the rest),
429s received, failures to the IdP, jobs not done, and the audit chain verification.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import urllib3

from scim_bridge.audit import AuditLog
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.service import JobService
from scim_bridge.deprovision.worker import Worker, WorkerThread
from scim_bridge.genesys.budget import SlidingWindowBudget
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.sandbox import SandboxConfig
from scim_bridge.sandbox import create_app as create_sandbox
from scim_bridge.sandbox.control import SandboxControl
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade

OPEN = ("pending", "running", "waiting")
GENESYS_WINDOW_S = 60.0
BRIDGE_WINDOW_S = 61.0  # create_app's shared budget (scim_bridge.bootstrap.BUDGET_MARGIN_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=1000, help="users to delete")
    parser.add_argument("--single", type=int, default=20, help="of which one by one, first")
    parser.add_argument("--rate", type=int, default=300, help="Genesys requests per minute")
    parser.add_argument("--concurrency", type=int, default=8, help="worker threads")
    parser.add_argument("--batch", type=int, default=200, help="jobs a worker round claims")
    parser.add_argument("--http", action="store_true", help="DELETEs over HTTP to create_app")
    parser.add_argument(
        "--deactivate",
        action="store_true",
        help="--http: Okta's PATCH active=false instead of DELETE (a busy IdP push of "
        "deactivations: no history proof, no delete)",
    )
    parser.add_argument("--clients", type=int, default=8, help="--http: IdP client threads")
    parser.add_argument("--database-url", default=None, help="--http: default a SQLite file")
    parser.add_argument("--async-delay", type=float, default=15.0, help="async job seconds")
    parser.add_argument("--lag", type=float, default=3600.0, help="data lake lag, seconds")
    parser.add_argument("--gather", type=float, default=15.0, help="HISTORY_BATCH_WINDOW, seconds")
    parser.add_argument("--history-days", type=int, default=1095, help="seeded history, days")
    parser.add_argument(
        "--sandbox-thread",
        action="store_true",
        help="--http: serve the sandbox from a thread of this process, not its own process",
    )
    args = parser.parse_args()
    if args.deactivate and not args.http:
        parser.error("--deactivate goes over HTTP: add --http")

    # The seeded org has some inactive and deleted users: seed enough to find N active ones.
    config = SandboxConfig(
        users=int(args.users * 1.3) + 10,
        seed=7,
        rate_limit_per_minute=args.rate,
        history_days=args.history_days,
        async_job_delay_s=args.async_delay,
        data_availability_lag_s=args.lag,
        # The figures measure the sequence's calls; a group's queue membership, which the drain
        # retries for minutes (docs/deprovisioning.md), is left out, as it was when measured.
        group_queue_members=False,
    )
    own_process = args.http and not args.sandbox_thread
    with _sandbox(config, own_process) as url, tempfile.TemporaryDirectory() as tmp:
        control = SandboxControl(url)
        control.faults(async_job_delay_s=args.async_delay, data_availability_lag_s=args.lag)
        lister = SdkGateway(url, config.client_id, config.client_secret)
        ids = _active_users(lister, args.users)
        lister.close()
        if args.http:
            report = _run_http(
                args, config=config, url=url, control=control, ids=ids, tmp=Path(tmp)
            )
        else:
            report = _run_in_process(
                args, config=config, url=url, control=control, ids=ids, tmp=Path(tmp)
            )
        final = "inactive" if args.deactivate else "deleted"
        deleted = sum(1 for uid in ids if control.user(uid)["state"] == final)
        _print(args, report, deleted, len(ids))


@contextlib.contextmanager
def _sandbox(config: SandboxConfig, own_process: bool) -> Iterator[str]:
    """The sandbox's URL. In its own process (``scim-bridge sandbox``) by default with --http, so
    that the simulator does not share this process's interpreter lock with the bridge."""
    if not own_process:
        with ServerThread(create_sandbox(config)) as server:
            yield server.url
        return
    command = [
        sys.executable, "-m", "scim_bridge", "sandbox", "--port", "0", "--quiet",
        "--users", str(config.users), "--seed", str(config.seed),
        "--rate-limit", str(config.rate_limit_per_minute),
        "--history-days", str(config.history_days),
        "--async-job-delay", str(config.async_job_delay_s),
        "--client-id", config.client_id, "--client-secret", config.client_secret,
        "--no-group-queues",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"(http://\S+)", first)
        if found is None:
            raise RuntimeError(f"the sandbox did not start: {first!r}")
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _active_users(gateway: SdkGateway, count: int) -> list[str]:
    ids: list[str] = []
    page = 1
    while len(ids) < count:
        got = gateway.list_users(page_number=page, page_size=100, state="active").items
        if not got:
            break
        ids += [u.id for u in got]
        page += 1
    return ids[:count]


# Where the calls go: the first category whose pattern is in "METHOD /path" wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("history", ("/analytics/",)),
    ("footprint", ("/authorization/", "/routingskills", "/routinglanguages")),
    # A user's listings, or the org's queues and their members (the worker's round, issue 11).
    ("queue listings", ("GET /api/v2/users/<user_id>/queues", "GET /api/v2/routing/queues")),
    ("queue removals", ("/routing/queues/",)),
    ("user reads", ("GET /api/v2/users",)),
    ("state (PATCH)", ("PATCH /api/v2/users/<user_id>",)),
    ("delete", ("DELETE /api/v2/users/<user_id>",)),
    ("sessions", ("/api/v2/tokens/",)),  # every deactivation ends the sessions (issue 10)
)


def _counts(control: SandboxControl) -> Counter[str]:
    """Requests answered so far, per endpoint; the token endpoint excluded (its own budget)."""
    return Counter(
        {
            endpoint: sum(by_status.values())
            for endpoint, by_status in control.stats()["endpoints"].items()
            if "/api/" in endpoint
        }
    )


def _where(delta: Counter[str], users: int) -> str:
    """Calls per user by category, e.g. ``user reads 2.00, history 8.00``."""
    by: Counter[str] = Counter()
    for endpoint, n in delta.items():
        name = next((c for c, pats in CATEGORIES if any(p in endpoint for p in pats)), "other")
        by[name] += n
    order = [c for c, _ in CATEGORIES] + ["other"]
    where = ", ".join(f"{c} {by[c] / max(1, users):.2f}" for c in order if by[c])
    history = Counter(
        {
            name: sum(n for endpoint, n in delta.items() if endpoint in endpoints)
            for name, endpoints in HISTORY_PARTS
        }
    )
    parts = ", ".join(f"{c} {history[c] / max(1, users):.2f}" for c, _ in HISTORY_PARTS)
    return f"{where} (history: {parts})"


_JOBS = "/api/v2/analytics/conversations/details/jobs"
# The history's calls by kind: an async job's submission, status reads and result pages, the
# synchronous tail queries, and the check after's reads by id (the lake's availability date,
# when read alone, under "other").
HISTORY_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("submit", (f"POST {_JOBS}",)),
    ("status", (f"GET {_JOBS}/<job_id>",)),
    ("results", (f"GET {_JOBS}/<job_id>/results",)),
    ("tail", ("POST /api/v2/analytics/conversations/details/query",)),
    ("by id", ("GET /api/v2/analytics/conversations/details",)),
)


def _calls(control: SandboxControl) -> tuple[int, int]:
    """(API calls answered, 429s) so far; the token endpoint excluded (its own budget)."""
    stats = control.stats()
    api = sum(
        sum(by_status.values())
        for endpoint, by_status in stats["endpoints"].items()
        if "/api/" in endpoint
    )
    return api, int(stats["rate_limited"])


def _history_calls(control: SandboxControl) -> int:
    """Analytics calls so far: the async jobs (submit, status, results), the tail queries and
    the reads by id."""
    return sum(
        sum(by_status.values())
        for endpoint, by_status in control.stats()["endpoints"].items()
        if "/analytics/" in endpoint
    )


def _wait_done(engine: Any, worker: Worker | None, timeout_s: float = 3600) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if worker is not None:
            worker.run_until_idle(timeout_s=timeout_s)
        counts, _ = jobs.counts_by_state(engine)
        if not any(counts.get(s, 0) for s in OPEN):
            return
        time.sleep(0.05)


# --- in-process --------------------------------------------------------------------------------


def _run_in_process(
    args: argparse.Namespace,
    *,
    config: SandboxConfig,
    url: str,
    control: SandboxControl,
    ids: list[str],
    tmp: Path,
) -> dict[str, Any]:
    engine = make_engine(f"sqlite:///{tmp / 'bench.db'}")
    upgrade(engine)
    gateway = SdkGateway(
        url, config.client_id, config.client_secret, budget=SlidingWindowBudget(args.rate)
    )
    audit = AuditLog(engine)
    policies = Policies(history_batch_window_s=args.gather)
    service = JobService(engine, gateway, audit, policies, sync_budget_s=120.0)
    worker = Worker(service, batch=args.batch, concurrency=args.concurrency, poll_s=0.05)
    requester = Requester(actor="bench", idp="bench")

    def alone(uid: str) -> None:  # run inline, its async jobs waited for within the budget
        service.request("delete", uid, requester=requester)
        _wait_done(engine, worker)

    def batched(batch_ids: list[str]) -> None:
        for uid in batch_ids:
            service.enqueue("delete", uid, requester=requester)

    timed = _phases(args, control, ids, alone, batched, lambda: _wait_done(engine, worker))
    counts, _ = jobs.counts_by_state(engine)
    report = {
        "mode": "in-process (service.request / enqueue + Worker), SlidingWindowBudget",
        "window_s": GENESYS_WINDOW_S + 1.0,  # SlidingWindowBudget's slot life: window + 1 s
        **timed,
        "async_jobs": len(control.async_jobs()),
        "idp_failures": None,
        "jobs": counts,
        "history_queries": worker.history_queries,
        "audit_ok": audit.verify().ok,
    }
    gateway.close()
    engine.dispose()
    return report


# --- over HTTP, through create_app ------------------------------------------------------------------


def _run_http(
    args: argparse.Namespace,
    *,
    config: SandboxConfig,
    url: str,
    control: SandboxControl,
    ids: list[str],
    tmp: Path,
) -> dict[str, Any]:
    app = _http_bridge(args, config, url, tmp)
    logging.disable(logging.INFO)  # 20,000+ audit lines on stdout would be the benchmark
    components = app.extensions["scim_bridge"]
    engine = components.engine
    token = components.tokens.create("bench")
    worker = _woken_worker(args, components)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    http = urllib3.PoolManager(
        maxsize=max(1, args.clients), retries=False, timeout=urllib3.Timeout(total=120)
    )

    with ServerThread(app) as bridge:
        base = f"{bridge.url}/scim/v2/Users/"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        method, body = ("PATCH", OKTA_DEACTIVATE) if args.deactivate else ("DELETE", None)

        def delete(uid: str) -> None:
            try:
                status = http.request(method, base + uid, headers=headers, body=body).status
            except urllib3.exceptions.HTTPError:
                status = 0  # no answer at all: a failure to the IdP too
            with lock:
                statuses[status] += 1

        thread = WorkerThread(worker).start()
        try:
            timed = _timed_deletes(args, control, engine, ids, delete)
        finally:
            thread.stop(timeout=30)
    http.clear()

    counts, _ = jobs.counts_by_state(engine)
    report = {
        "mode": (
            f"HTTP: create_app + SharedBudget (database), {args.clients} IdP client threads, "
            f"sandbox in {'a thread' if args.sandbox_thread else 'its own process'}"
        ),
        "window_s": BRIDGE_WINDOW_S,
        **timed,
        "async_jobs": len(control.async_jobs()),
        "idp_failures": sum(n for status, n in statuses.items() if not 200 <= status < 300),
        "idp_statuses": dict(sorted(statuses.items())),
        "jobs": counts,
        "history_queries": worker.history_queries,
        "audit_ok": components.audit.verify().ok,
    }
    components.close()
    return report


# Okta's deactivation: a path-less replace of ``active`` (shared/idp-behaviour.md).
OKTA_DEACTIVATE = json.dumps(
    {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
).encode()


def _woken_worker(args: argparse.Namespace, components: Any) -> Worker:
    """A worker on the bridge's service, woken by requests that leave work (and batching their
    history) as the in-process worker is."""
    deprovisioner = components.deprovisioner
    assert deprovisioner is not None
    service = deprovisioner.service
    worker = Worker(service, batch=args.batch, concurrency=args.concurrency, poll_s=0.05)
    service.set_wake(worker.wake)
    return worker


def _http_bridge(args: argparse.Namespace, config: SandboxConfig, url: str, tmp: Path) -> Any:
    """The bridge's Flask app against the sandbox, with no in-process worker."""
    from _bridge import sandbox_settings

    from scim_bridge.app import create_app

    settings = sandbox_settings(
        url,
        config,
        rate=args.rate,
        database_url=args.database_url or f"sqlite:///{tmp / 'bridge.db'}",
        history_batch_window_s=args.gather,
    )
    return create_app(settings)


def _timed_deletes(
    args: argparse.Namespace,
    control: SandboxControl,
    engine: sa.Engine,
    ids: list[str],
    delete: Callable[[str], None],
) -> dict[str, Any]:
    """The single DELETEs one at a time, then the batch from ``--clients`` threads."""

    def alone(uid: str) -> None:  # answered and finished before the next
        delete(uid)
        _wait_done(engine, None)

    return _phases(
        args,
        control,
        ids,
        alone,
        lambda batch_ids: _fan_out(batch_ids, delete, args.clients),
        lambda: _wait_done(engine, None),
    )


def _phases(
    args: argparse.Namespace,
    control: SandboxControl,
    ids: list[str],
    alone: Callable[[str], None],
    batched: Callable[[list[str]], None],
    wait_done: Callable[[], None],
) -> dict[str, Any]:
    """``--single`` users alone, then the rest at once: the Genesys calls of each phase (history
    among them, and where they went), the time each took, and when the batch was all answered."""
    single_ids, batch_ids = ids[: args.single], ids[args.single :]
    c0, r0 = _calls(control)
    h0 = _history_calls(control)
    k0 = _counts(control)
    t0 = time.monotonic()
    for uid in single_ids:
        alone(uid)
    single_s = time.monotonic() - t0
    c1, _ = _calls(control)
    h1 = _history_calls(control)
    k1 = _counts(control)

    t1 = time.monotonic()
    batched(batch_ids)
    answered_s = time.monotonic() - t1
    wait_done()
    batch_s = time.monotonic() - t1
    c2, r2 = _calls(control)
    h2 = _history_calls(control)
    k2 = _counts(control)
    return {
        "single": (c1 - c0, len(single_ids), single_s),
        "batched": (c2 - c1, len(batch_ids), batch_s),
        "history": (h1 - h0, h2 - h1),
        "where": (_where(k1 - k0, len(single_ids)), _where(k2 - k1, len(batch_ids))),
        "answered_s": answered_s,
        "calls": c2 - c0,
        "rate_limited": r2 - r0,
        "wall_s": single_s + batch_s,
        "batch_wall_s": batch_s,
    }


def _fan_out(items: list[str], fn: Callable[[str], None], threads: int) -> None:
    work: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    for item in items:
        work.put(item)
    for _ in range(threads):
        work.put(None)

    def run() -> None:
        while (item := work.get()) is not None:
            fn(item)

    pool = [threading.Thread(target=run, name=f"idp-{i}") for i in range(max(1, threads))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


# --- the table ---------------------------------------------------------------------------------------


def _timing_rows(args: argparse.Namespace, report: dict[str, Any]) -> list[tuple[str, str]]:
    calls, rate = report["calls"], args.rate
    # The batched phase alone against its bound: the single phase waits on one async job at a
    # time and is not meant to fill the budget.
    b_bound_s = report["batched"][0] / rate * 60
    bound_s = calls / rate * 60
    # A sliding window lets the whole budget go at once, then again one window later: call k
    # (from 0) cannot go before floor(k / rate) windows.
    floor_s = ((calls - 1) // rate) * report["window_s"] if calls else 0.0
    wall = report["wall_s"]
    return [
        ("wall time", f"{wall:.1f}s"),
        (
            "batched phase vs its bound",
            f"{report['batch_wall_s']:.1f}s against {b_bound_s:.1f}s -> "
            f"{report['batch_wall_s'] / b_bound_s if b_bound_s else float('inf'):.2f}x",
        ),
        ("bound (calls / budget)", f"{bound_s:.1f}s  -> wall is {wall / bound_s:.2f}x the bound"),
        (
            "floor (sliding window)",
            f"{floor_s:.1f}s  ({report['window_s']:.0f}s window) -> wall is "
            f"{wall / floor_s if floor_s else float('inf'):.2f}x the floor",
        ),
        ("audit chain", "intact" if report["audit_ok"] else "BROKEN"),
    ]


def _print(args: argparse.Namespace, report: dict[str, Any], deleted: int, asked: int) -> None:
    calls, rate = report["calls"], args.rate
    s_hist, b_hist = report["history"]
    s_calls, s_users, s_s = report["single"]
    b_calls, b_users, b_s = report["batched"]
    not_done = sum(n for state, n in report["jobs"].items() if state != "done")
    rows = [
        ("mode", report["mode"]),
        (
            "users deactivated" if args.deactivate else "users deleted",
            f"{deleted} of {asked} (jobs not done: {not_done})",
        ),
        ("rate budget", f"{rate}/min (sandbox and bridge)"),
        ("Genesys calls", f"{calls}"),
        (
            "calls per user, single",
            f"{s_calls / max(1, s_users):.2f}  ({s_users} users, {s_s:.1f}s)",
        ),
        (
            "calls per user, batched",
            f"{b_calls / max(1, b_users):.2f}  ({b_users} users, {b_s:.1f}s)",
        ),
        (
            "of which history (analytics)",
            f"single {s_hist / max(1, s_users):.2f}, batched {b_hist / max(1, b_users):.2f} per "
            f"user; {report['async_jobs']} async jobs (delay {args.async_delay:.0f}s, lake lag "
            f"{args.lag:.0f}s, gathered {args.gather:.0f}s, {args.history_days} days of history)",
        ),
        ("where they go, single", report["where"][0]),
        ("where they go, batched", report["where"][1]),
        ("429s received", f"{report['rate_limited']}"),
    ]
    if report["idp_failures"] is not None:
        rows.append(
            (
                "failures to the IdP",
                f"{report['idp_failures']}  (HTTP answers {json.dumps(report['idp_statuses'])})",
            )
        )
        rows.append(("all DELETEs answered in", f"{report['answered_s']:.1f}s"))
    rows += _timing_rows(args, report)
    width = max(len(k) for k, _ in rows)
    print(f"| {'':{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for key, value in rows:
        print(f"| {key:{width}} | {value} |")


if __name__ == "__main__":
    main()
