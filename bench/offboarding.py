"""Mass offboarding against the sandbox: N deletes at a Genesys rate budget (default 3000/min).

    .venv/bin/python bench/offboarding.py --users 1000 --single 20

The sandbox enforces the budget (429 past it) and the gateway's own budget is set to the same.
Two phases: ``--single`` deletes run one by one through ``request()`` (each job alone, its own
history queries); the rest are queued and finished by the worker, which checks many users' history
in one analytics query. Genesys calls are counted by the sandbox (``/sandbox/stats``).
Prints wall time beside the bound the budget sets (calls needed / budget), calls per deleted user
in each mode, 429s received and failures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scim_bridge.audit import AuditLog
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.deprovision.policies import Policies
from scim_bridge.deprovision.service import DeprovisioningService
from scim_bridge.deprovision.worker import Worker
from scim_bridge.genesys.budget import SlidingWindowBudget
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.sandbox import SandboxConfig, create_app
from scim_bridge.sandbox.control import SandboxControl
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000, help="users to delete")
    parser.add_argument("--single", type=int, default=20, help="of which one by one, inline")
    parser.add_argument("--rate", type=int, default=3000, help="Genesys requests per minute")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()

    # The seeded org has some inactive users: seed enough to find N active ones.
    config = SandboxConfig(
        users=int(args.users * 1.3) + 10, seed=7, rate_limit_per_minute=args.rate
    )
    with ServerThread(create_app(config)) as server, tempfile.TemporaryDirectory() as tmp:
        control = SandboxControl(server.url)
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        gateway = SdkGateway(
            server.url,
            config.client_id,
            config.client_secret,
            budget=SlidingWindowBudget(args.rate),
        )
        audit = AuditLog(engine)
        service = DeprovisioningService(engine, gateway, audit, Policies(), sync_budget_s=120.0)
        worker = Worker(service, batch=args.batch, concurrency=args.concurrency, poll_s=0.05)
        ids: list[str] = []
        page = 1
        while len(ids) < args.users:
            got = gateway.list_users(page_number=page, page_size=100, state="active").items
            if not got:
                break
            ids += [u.id for u in got]
            page += 1
        ids = ids[: args.users]
        requester = Requester(actor="bench", idp="bench")

        def calls() -> tuple[int, int]:
            stats = control.stats()
            return int(stats["total"]), int(stats["rate_limited"])

        # --- single: each job alone, inline ---------------------------------------------------
        single_ids, batch_ids = ids[: args.single], ids[args.single :]
        c0, r0 = calls()
        t0 = time.monotonic()
        for uid in single_ids:
            service.request("delete", uid, requester=requester)
        single_s = time.monotonic() - t0
        c1, _ = calls()

        # --- batched: queued, the worker finishes them ----------------------------------------
        t1 = time.monotonic()
        for uid in batch_ids:
            service.enqueue("delete", uid, requester=requester)
        while True:
            worker.run_until_idle(timeout_s=3600)
            counts, _ = jobs.counts_by_state(engine)
            if not any(counts.get(s, 0) for s in ("pending", "running", "waiting")):
                break
            time.sleep(0.2)
        batch_s = time.monotonic() - t1
        c2, r2 = calls()

        counts, _ = jobs.counts_by_state(engine)
        done = counts.get("done", 0)
        failures = sum(n for s, n in counts.items() if s != "done")
        deleted = sum(1 for uid in ids if control.user(uid)["state"] == "deleted")
        per_single = (c1 - c0) / max(1, len(single_ids))
        per_batch = (c2 - c1) / max(1, len(batch_ids))
        total_calls = c2 - c0
        bound_s = total_calls / args.rate * 60
        wall_s = single_s + batch_s
        print(
            f"users deleted            {deleted} of {len(ids)} (jobs done {done}, not done {failures})"
        )
        print(f"rate budget              {args.rate}/min (sandbox and gateway)")
        print(f"Genesys calls            {total_calls} (429s received: {r2 - r0})")
        print(
            f"calls per user, single   {per_single:.1f}  ({len(single_ids)} users, {single_s:.1f}s)"
        )
        print(f"calls per user, batched  {per_batch:.1f}  ({len(batch_ids)} users, {batch_s:.1f}s)")
        print(f"history queries, batched {worker.history_queries}")
        print(f"wall time                {wall_s:.1f}s")
        print(f"bound (calls / budget)   {bound_s:.1f}s  -> {wall_s / bound_s:.2f}x the bound")
        print(f"audit chain              {'intact' if audit.verify().ok else 'BROKEN'}")
        engine.dispose()


if __name__ == "__main__":
    main()
