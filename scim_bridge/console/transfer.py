"""Moving what one SCIM token owns to another (an IdP migration), as an operator's action: the
operator's name and a required reason go on the audit trail with the move, in one transaction.

Two ways in, one rule: the console's Tokens page (the operator is whoever is signed in) and
``scim-bridge tokens transfer --from A --to B --operator alice --reason "..."`` (a shell with
database access: the name must be a live operator's, as the person at the shell states it).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.audit.chain import AuditEvent
from scim_bridge.console.operators import OperatorStore, actor
from scim_bridge.scim.tokens import TokenError, TokenStore
from scim_bridge.store.schema import audit_events

MAX_REASON = 500


@dataclasses.dataclass(frozen=True)
class Moved:
    count: int  # users and groups
    seq: int  # the audit event's


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
) -> Moved:
    """Move what ``source`` owns to ``target``. ``TokenError`` (nothing done) without a reason,
    for a name that is not a live operator, or a target that is no token."""
    why = folded(reason)
    if not why:
        raise TokenError("a reason is required (it goes on the audit trail)")
    if not OperatorStore(tokens.engine).live(operator):
        raise TokenError(f"no live operator named {operator!r} (scim-bridge operators list)")

    events: list[AuditEvent] = []

    def record(conn: sa.Connection, moved: int) -> None:
        event = audit.recorder(conn).record(
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

        events.append(event)

    count = tokens.transfer(source, target, record=record)
    return Moved(count, events[0].seq)


def recorded(engine: sa.Engine, seq: int) -> dict[str, Any] | None:
    """The detail and actor of transfer event ``seq`` (what the Tokens page shows after a move:
    the trail's record, not anything the URL says), or None if ``seq`` is no transfer."""
    query = sa.select(audit_events.c.actor, audit_events.c.detail).where(
        audit_events.c.seq == seq, audit_events.c.tag == Tag.SCIM_TOKEN_TRANSFERRED
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else {"actor": row[0], "seq": seq, **json.loads(row[1])}
