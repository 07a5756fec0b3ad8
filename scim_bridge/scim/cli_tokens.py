"""``scim-bridge tokens create|list|revoke``: SCIM bearer tokens, one per IdP connection.

``create --name okta-prod`` prints a new token once (only its SHA-256 is stored); ``--token VALUE``
imports a given secret instead (automated deployments). The name is the audit actor of every
request made with the token.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True, help="the IdP connection, e.g. okta-prod")
    create.add_argument("--token", help="import this secret instead of generating one")
    sub.add_parser("list", help="list token names (never the tokens)")
    revoke = sub.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")


def run(args: argparse.Namespace) -> int:
    from scim_bridge.audit import Tag
    from scim_bridge.bootstrap import bootstrap
    from scim_bridge.config import ConfigError, Settings
    from scim_bridge.scim.tokens import TokenError

    out, err = sys.stdout, sys.stderr
    try:
        settings = Settings.from_env()
    except ConfigError as e:
        err.write(f"scim-bridge tokens: {e}\n")
        return 2
    components = bootstrap(settings)
    try:
        store, audit = components.tokens, components.audit
        if args.tokens_command == "create":
            try:
                token = store.create(args.name, args.token)
            except TokenError as e:
                err.write(f"scim-bridge tokens create: {e}\n")
                return 1
            audit.record(
                Tag.SCIM_TOKEN_CREATED,
                actor="cli",
                idp=args.name,
                detail={"name": args.name, "imported": args.token is not None},
            )
            if args.token is None:
                out.write(f"{token}\n")
                err.write(
                    f"Token {args.name!r} created. It is shown once: store it in the IdP now.\n"
                )
            else:
                err.write(f"Token {args.name!r} imported.\n")
            return 0
        if args.tokens_command == "list":
            for info in store.list():
                out.write(f"{info.name}\tcreated {info.created_at}\n")
            return 0
        if not store.revoke(args.name):
            err.write(f"scim-bridge tokens revoke: no token named {args.name!r}\n")
            return 1
        audit.record(Tag.SCIM_TOKEN_REVOKED, actor="cli", idp=args.name, detail={"name": args.name})
        err.write(f"Token {args.name!r} revoked.\n")
        return 0
    finally:
        components.close()
