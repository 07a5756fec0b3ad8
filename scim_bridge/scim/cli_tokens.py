"""``scim-bridge tokens create|list|rotate|transfer|revoke``: SCIM bearer tokens, one per IdP
connection.

``create --name okta-prod [--scope email:GLOB] [--scope division:ID] [--idp okta|entra|other]
[--expires 90d]`` prints a new token once (only its SHA-256 is stored); ``--token VALUE`` imports
a given secret instead (automated deployments). Scopes are a union; none means the whole org.
The name is the audit actor of every request made with the token and the owner of what it writes.
``rotate NAME [--overlap 24h]`` prints a new secret and says until when the old one still works.
``transfer --from A --to B --operator alice --reason "..."`` moves what A owns to B (an IdP
migration), audited as ``operator:alice`` with the reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scim_bridge.audit import AuditLog
    from scim_bridge.scim.tokens import TokenStore

DEFAULT_OVERLAP = "24h"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True, help="the IdP connection, e.g. okta-prod")
    create.add_argument("--token", help="import this secret instead of generating one")
    create.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="email:GLOB|division:ID",
        help="what the token may see and change (repeatable, a union; none: the whole org)",
    )
    create.add_argument(
        "--idp",
        choices=["okta", "entra", "other"],
        default="other",
        help="the IdP using it: a rate-limited answer is 429 for okta/other, 503 for entra",
    )
    create.add_argument("--expires", metavar="DURATION", help="e.g. 90d; default: never")
    sub.add_parser("list", help="list tokens (names, scopes, IdP, expiry; never the tokens)")
    rotate = sub.add_parser("rotate", help="issue a new secret; the old one works for --overlap")
    rotate.add_argument("name")
    rotate.add_argument(
        "--overlap",
        default=DEFAULT_OVERLAP,
        metavar="DURATION",
        help=f"how long the old secret stays valid (default {DEFAULT_OVERLAP}; 0: not at all)",
    )
    rotate.add_argument("--token", help="import this secret instead of generating one")
    transfer = sub.add_parser("transfer", help="move every resource one token owns to another")
    transfer.add_argument("--from", dest="source", required=True, metavar="NAME")
    transfer.add_argument("--to", dest="target", required=True, metavar="NAME")
    transfer.add_argument(
        "--operator", required=True, metavar="NAME", help="who is doing this (a live operator)"
    )
    transfer.add_argument("--reason", required=True, help="why (recorded on the audit trail)")
    revoke = sub.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")


def run(args: argparse.Namespace) -> int:
    from scim_bridge.bootstrap import bootstrap
    from scim_bridge.config import ConfigError, Settings
    from scim_bridge.scim.tokens import TokenError

    command = f"scim-bridge tokens {args.tokens_command}"
    try:
        settings = Settings.from_env()
        durations = _durations(args)
    except ConfigError as e:
        sys.stderr.write(f"{command}: {e}\n")
        return 2
    # Only ``create`` (a first-run step, before the bridge's start) may create the database.
    components = bootstrap(settings, existing=args.tokens_command != "create")
    try:
        action = _ACTIONS[args.tokens_command]
        if args.tokens_command != "list":
            components.audit.check_can_append()  # before the change its event would record
        return action(_Context(args, components.tokens, components.audit, *durations))
    except TokenError as e:
        sys.stderr.write(f"{command}: {e}\n")
        return 1
    finally:
        components.close()


@dataclasses.dataclass(frozen=True)
class _Context:
    args: argparse.Namespace
    store: TokenStore
    audit: AuditLog
    expires_s: float | None  # --expires (create)
    overlap_s: float  # --overlap (rotate)


def _durations(args: argparse.Namespace) -> tuple[float | None, float]:
    from scim_bridge.config import parse_duration

    expires = getattr(args, "expires", None)
    return (
        parse_duration(expires, name="--expires") if expires else None,
        parse_duration(args.overlap, name="--overlap") if args.tokens_command == "rotate" else 0.0,
    )


def _create(ctx: _Context) -> int:
    from scim_bridge.audit import Tag

    args, store = ctx.args, ctx.store
    token = store.create(
        args.name, args.token, scopes=args.scope, idp=args.idp, expires_in_s=ctx.expires_s
    )
    info = store.get(args.name)
    assert info is not None
    ctx.audit.record(
        Tag.SCIM_TOKEN_CREATED,
        actor="cli",
        idp=args.name,
        detail={
            "name": args.name,
            "imported": args.token is not None,
            "scopes": [str(s) for s in info.scopes],
            "idp": info.idp,
            "expires_at": info.expires_at,
        },
    )
    scope = ", ".join(str(s) for s in info.scopes) or "the whole org"
    if args.token is not None:
        sys.stderr.write(f"Token {args.name!r} imported (IdP {info.idp}; scope: {scope}).\n")
        return 0
    sys.stdout.write(f"{token}\n")
    sys.stderr.write(
        f"Token {args.name!r} created (IdP {info.idp}; scope: {scope}"
        + (f"; expires {info.expires_at}" if info.expires_at else "")
        + "). It is shown once: store it in the IdP now.\n"
    )
    return 0


def _list(ctx: _Context) -> int:
    for info in ctx.store.list():
        scope = ",".join(str(s) for s in info.scopes) or "whole-org"
        previous = (
            f"\tprevious secret valid until {info.previous_valid_until}"
            if info.previous_valid_until
            else ""
        )
        sys.stdout.write(
            f"{info.name}\tidp {info.idp}\tscope {scope}\tcreated {info.created_at}"
            f"\texpires {info.expires_at or 'never'}{previous}\n"
        )
    return 0


def _rotate(ctx: _Context) -> int:
    from scim_bridge.audit import Tag

    args, overlap = ctx.args, ctx.overlap_s
    token, until = ctx.store.rotate(args.name, overlap_s=overlap, token=args.token)
    ctx.audit.record(
        Tag.SCIM_TOKEN_ROTATED,
        actor="cli",
        idp=args.name,
        detail={"name": args.name, "overlap_s": overlap, "old_valid_until": until},
    )
    if args.token is None:
        sys.stdout.write(f"{token}\n")
    ended = (
        f"The old secret stays valid until {until} ({args.overlap}): "
        "put the new one in the IdP before then."
        if overlap > 0
        else "The old secret no longer works."
    )
    sys.stderr.write(f"Token {args.name!r} rotated. {ended}\n")
    return 0


def _transfer(ctx: _Context) -> int:
    """As an operator action: the named operator and the reason go on the audit trail with the
    move, in its transaction (console/transfer.py, which the console's Tokens page uses too)."""
    from scim_bridge.console import transfer

    args = ctx.args
    moved = transfer.transfer(
        ctx.store,
        ctx.audit,
        source=args.source,
        target=args.target,
        operator=args.operator,
        reason=args.reason,
        via="cli",
    ).count
    sys.stderr.write(f"{moved} resource(s) moved from {args.source!r} to {args.target!r}.\n")
    return 0


def _revoke(ctx: _Context) -> int:
    from scim_bridge.audit import Tag

    name = ctx.args.name
    if not ctx.store.revoke(name):
        sys.stderr.write(f"scim-bridge tokens revoke: no token named {name!r}\n")
        return 1
    ctx.audit.record(Tag.SCIM_TOKEN_REVOKED, actor="cli", idp=name, detail={"name": name})
    sys.stderr.write(f"Token {name!r} revoked.\n")
    return 0


_ACTIONS: dict[str, Callable[[_Context], int]] = {
    "create": _create,
    "list": _list,
    "rotate": _rotate,
    "transfer": _transfer,
    "revoke": _revoke,
}
