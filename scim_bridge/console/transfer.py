"""Moving what one SCIM token owns to another (an IdP migration), as an operator's action: the
operator's name and a required reason go on the audit trail with the move, in one transaction.

Two ways in, one rule: the console's Tokens page (the operator is whoever is signed in) and
``scim-bridge tokens transfer --from A --to B --operator alice --reason "..."`` (a shell with
database access: the name must be a live operator's, as the person at the shell states it).
"""

from __future__ import annotations

import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.console.operators import OperatorStore, actor
from scim_bridge.scim.tokens import TokenError, TokenStore

MAX_REASON = 500


def folded(reason: str | None) -> str:
    """The reason with its whitespace folded, at most ``MAX_REASON`` characters."""
    return " ".join((reason or "").split())[:MAX_REASON]


def transfer(
    tokens: TokenStore,
    audit: AuditLog,
    *,
    source: str,
    target: str,
    operator: str,
    reason: str,
    via: str,
) -> int:
    """Move what ``source`` owns to ``target``; the count moved. ``TokenError`` (nothing done)
    without a reason, for a name that is not a live operator, or a target that is no token."""
    why = folded(reason)
    if not why:
        raise TokenError("a reason is required (it goes on the audit trail)")
    if not OperatorStore(tokens.engine).live(operator):
        raise TokenError(f"no live operator named {operator!r} (scim-bridge operators list)")

    def record(conn: sa.Connection, moved: int) -> None:
        audit.recorder(conn).record(
            Tag.SCIM_TOKEN_TRANSFERRED,
            actor=actor(operator),
            idp=target,
            detail={
                "from": source,
                "to": target,
                "resources": moved,
                "operator_reason": why,
                "via": via,
            },
        )

    return tokens.transfer(source, target, record=record)
