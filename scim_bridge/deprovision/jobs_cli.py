"""``scim-bridge jobs list|show|approve|retry|cut-access|cancel``: the admin API's job operations,
from a shell.

The actions are an operator's, as in the console: ``--operator NAME`` must be a live operator
(``scim-bridge operators list``) and ``--reason`` is required; both go on the audit trail as
``operator:NAME`` with ``operator_reason``, the same as ``tokens transfer`` and the console's
buttons. (``--by`` is the old spelling of ``--operator`` and is held to the same rule.)"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="jobs, newest first")
    listing.add_argument("--state", help="pending, running, waiting, held, done, failed, cancelled")
    listing.add_argument("--user", help="a Genesys user id")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = sub.add_parser("show", help="one job: steps, evidence and audit events (JSON)")
    show.add_argument("job_id")
    for name, text in (
        ("approve", "release a held job (delete breaker, lost history job, history mismatch)"),
        ("retry", "run a held, waiting or failed job again from its recorded step"),
        ("cut-access", "cut access now: revoke sessions, deactivate as soon as Genesys allows"),
        ("cancel", "stop an open job: nothing further is done in Genesys"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("job_id")
        command.add_argument(
            "--operator",
            "--by",
            dest="operator",
            required=True,
            metavar="NAME",
            help="who is doing this: a live operator (scim-bridge operators list)",
        )
        command.add_argument("--reason", required=True, help="why (on the audit trail)")
        if name == "approve":
            command.add_argument(
                "--accept",
                action="append",
                default=[],
                metavar="CONVERSATION_ID",
                help="a held history mismatch: accept this missing conversation (repeat for each)",
            )


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def run(args: argparse.Namespace) -> int:
    import time

    from scim_bridge.bootstrap import bootstrap
    from scim_bridge.config import Settings
    from scim_bridge.deprovision import jobs, operators

    components = bootstrap(Settings.from_env(), existing=True)  # never a new, empty database
    engine, audit = components.engine, components.audit
    try:
        if args.jobs_command not in ("list", "show"):
            audit.check_can_append()  # before the change its event would record
        if args.jobs_command == "list":
            _list(engine, args)
            return 0
        if args.jobs_command == "show":
            found = jobs.find(engine, args.job_id)
            if found is None:
                sys.stderr.write(f"no job {args.job_id}\n")
                return 1
            _out(json.dumps(operators.details(engine, audit, found), indent=2, default=str))
            return 0
        try:
            job = _operate(engine, audit, args, now=time.time())
        except (LookupError, operators.NotAllowed) as error:
            sys.stderr.write(f"{error}\n")
            return 1
        _out(f"{job.id} {job.state} at {job.step}")
        return 0
    finally:
        components.close()


def _list(engine: Any, args: argparse.Namespace) -> None:
    """One line a job, under a header; the last column is what an open job waits on (with the
    reason it is held) or a finished job's reason, as the console shows it."""
    from scim_bridge.console.queries import waits_on
    from scim_bridge.deprovision import jobs, operators

    rows = jobs.listing(engine, state=args.state, user_id=args.user, limit=args.limit)
    if not args.json and rows:
        _out(
            f"{'JOB':<32}  {'ACTION':<10} {'STATE':<9} {'STEP':<15} {'USER':<36}  "
            f"{'CREATED':<20}  WAITS ON / REASON"
        )
    for job in rows:
        shown: dict[str, Any] = operators.describe(job)
        if args.json:
            _out(json.dumps(shown, default=str))
        else:
            _out(
                f"{job.id:<32}  {job.action:<10} {job.state:<9} {job.step:<15} "
                f"{job.user_id:<36}  {shown['created_at'] or '':<20}  {waits_on(job)}"
            )


def _operate(engine: Any, audit: Any, args: argparse.Namespace, *, now: float) -> Any:
    from scim_bridge.console.operators import OperatorStore, actor
    from scim_bridge.deprovision import operators

    if not OperatorStore(engine).live(args.operator):
        raise operators.NotAllowed(
            f"no live operator named {args.operator!r} (scim-bridge operators list)"
        )
    reason = " ".join(args.reason.split())[:500]
    if not reason:
        raise operators.NotAllowed(f"{args.jobs_command} needs a reason (--reason)")
    who = actor(args.operator)
    if args.jobs_command == "approve":
        accept = frozenset(args.accept)
        return operators.approve(
            engine, audit, args.job_id, actor=who, now=now, accept=accept, reason=reason
        )
    if args.jobs_command == "cut-access":
        return operators.cut_access(engine, audit, args.job_id, actor=who, reason=reason, now=now)
    if args.jobs_command == "cancel":
        return operators.cancel(engine, audit, args.job_id, actor=who, reason=reason, now=now)
    return operators.retry(engine, audit, args.job_id, actor=who, reason=reason, now=now)
