"""``scim-bridge operators create|list|revoke``: the people who act on jobs in the console.

``create --name alice`` prints alice's personal token once (only its SHA-256 is stored); she
signs in to ``/admin/ui`` with it and every action she takes there is audited as
``operator:alice`` with the reason she gives. ``revoke`` ends her sessions at once.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="operators_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create an operator and print the token once")
    create.add_argument("--name", required=True, help="the person, e.g. alice")
    sub.add_parser("list", help="list operators (never the tokens)")
    revoke = sub.add_parser("revoke", help="revoke an operator and end the sessions")
    revoke.add_argument("name")


def run(args: argparse.Namespace) -> int:
    from scim_bridge.audit import Tag
    from scim_bridge.bootstrap import bootstrap
    from scim_bridge.config import ConfigError, Settings
    from scim_bridge.console.operators import OperatorError, OperatorStore

    out, err = sys.stdout, sys.stderr
    try:
        settings = Settings.from_env()
    except ConfigError as e:
        err.write(f"scim-bridge operators: {e}\n")
        return 2
    # The database, migrated, and the audit log; only ``create`` may create the database.
    components = bootstrap(settings, existing=args.operators_command != "create")
    try:
        store, audit = OperatorStore(components.engine), components.audit
        if args.operators_command != "list":
            audit.check_can_append()  # before the change its event would record
        if args.operators_command == "create":
            try:
                token = store.create(args.name)
            except OperatorError as e:
                err.write(f"scim-bridge operators create: {e}\n")
                return 1
            audit.record(Tag.OPERATOR_CREATED, actor="cli", detail={"name": args.name})
            out.write(f"{token}\n")
            err.write(
                f"Operator {args.name!r} created. The token is shown once: "
                "hand it to them to sign in at /admin/ui.\n"
            )
            return 0
        if args.operators_command == "list":
            for op in store.list():
                state = f"revoked {op.revoked_at}" if op.revoked_at else "live"
                out.write(f"{op.name}\tcreated {op.created_at}\t{state}\n")
            return 0
        if not store.revoke(args.name):
            err.write(f"scim-bridge operators revoke: no live operator named {args.name!r}\n")
            return 1
        audit.record(Tag.OPERATOR_REVOKED, actor="cli", detail={"name": args.name})
        err.write(f"Operator {args.name!r} revoked; their sessions are ended.\n")
        return 0
    finally:
        components.close()
