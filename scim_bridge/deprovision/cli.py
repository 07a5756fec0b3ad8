"""``scim-bridge worker``: finish deprovisioning jobs until SIGTERM (DESIGN.md "Durable jobs").

On SIGTERM or SIGINT the worker stops claiming, hands each job back at its next step boundary
(resumable by any other worker) and exits 0.
"""

from __future__ import annotations

import argparse
import signal


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=100, help="jobs claimed per round")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs advanced in parallel")
    parser.add_argument("--lease", type=float, default=60.0, help="lease seconds (renewed)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between idle polls")
    parser.add_argument("--once", action="store_true", help="run until nothing is due, then exit")


def run(args: argparse.Namespace) -> int:
    from scim_bridge import logs
    from scim_bridge.app import genesys_gateway
    from scim_bridge.audit import AuditLog
    from scim_bridge.config import Settings
    from scim_bridge.deprovision import wiring
    from scim_bridge.store.engine import make_engine
    from scim_bridge.store.migrate import upgrade

    settings = Settings.from_env()
    logs.configure(settings.log_level)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    built = wiring.build(
        settings,
        engine=engine,
        # The rate budget shared with the bridge replicas and other workers (through the database).
        gateway=genesys_gateway(settings, engine),
        audit=AuditLog(engine, key=settings.audit_hmac_key),
        batch=args.batch,
        concurrency=args.concurrency,
        lease_s=args.lease,
    )
    worker = built.worker
    worker.poll_s = args.poll

    def _stop(_signum: int, _frame: object) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.once:
        worker.schedule_policy_deletes(force=True)
        worker.run_until_idle(timeout_s=3600)
    else:
        worker.run_forever()
    engine.dispose()
    return 0
