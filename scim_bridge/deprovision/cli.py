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
    from scim_bridge.bootstrap import WorkerOptions, bootstrap
    from scim_bridge.config import Settings

    settings = Settings.from_env()
    logs.configure(settings.log_level)
    options = WorkerOptions(batch=args.batch, concurrency=args.concurrency, lease_s=args.lease)
    components = bootstrap(settings, worker=options)
    try:
        # As the bridge's start: keyed from the first start with the key, refused without it.
        components.audit.ensure_keyed_head(actor="worker")
    except Exception:
        components.close()
        raise
    # The rate budget is shared with the bridge replicas and other workers (through the database).
    components.require_gateway()  # ConfigError without a Genesys org
    built = components.deprovisioner
    assert built is not None
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
    components.close()
    return 0
