"""Re-hire: ``POST /Users`` with the email of a user Genesys holds as deleted (issue 12).

Genesys keeps a deleted user's email reserved, so the create is a 409 (genesys-api.md 2.5), and
the IdP's follow-up lookup finds nothing (deleted users are 404 in SCIM). Terraform's provider
restores the deleted user in that case (genesys-api.md 2.5, TF ``createUser`` ->
``restoreDeletedUser``); so does the bridge, keeping the Genesys id (last year's reports still
name the same person), then applying the new attributes. A user deleted through the GDPR API
cannot be undeleted (2.4): that is a clear refusal, never a new user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from scim_bridge.directory import mapping
from scim_bridge.directory.errors import AlreadyExists, NotFound, translated
from scim_bridge.genesys import errors as gerrors
from scim_bridge.genesys.api import Gateway
from scim_bridge.genesys.types import Criterion, GenesysUser
from scim_bridge.store.schema import tombstones


class Unrestorable(AlreadyExists):
    """The email belongs to a deleted user Genesys will not restore (a GDPR delete)."""


def deleted_user_id(
    gateway: Gateway, engine: sa.Engine, email: str, *, deadline: float
) -> tuple[str, str] | None:
    """The id of the deleted Genesys user holding ``email``, and where it was found.

    The bridge's own tombstones first (no Genesys call, and no search lag: TF polls search for 3
    minutes after a delete, 2.4), each confirmed with ``?state=deleted``; then Genesys's search
    for ``email`` with ``state=deleted`` (TF ``getDeletedUserId``), for users deleted elsewhere.
    """
    with engine.connect() as conn:
        candidates = (
            conn.execute(
                sa.select(tombstones.c.user_id)
                .where(sa.func.lower(tombstones.c.email) == email.lower())
                .order_by(tombstones.c.deleted_at.desc())
            )
            .scalars()
            .all()
        )
    for user_id in candidates:
        try:
            with translated("User"):
                user = gateway.get_user(user_id, expect_deleted=True, deadline=deadline)
        except NotFound:
            continue  # a tombstone of a user Genesys no longer knows
        if user.state == "deleted" and (user.email or "").lower() == email.lower():
            return user.id, "tombstone"
    with translated("User"):
        page = gateway.search_users(
            [
                Criterion("EXACT", ("email",), email),
                Criterion("EXACT", ("state",), values=("deleted",)),
            ],
            page_size=25,
            deadline=deadline,
        )
    for user in page.items:
        if user.state == "deleted" and (user.email or "").lower() == email.lower():
            return user.id, "search"
    return None


def rehire(
    gateway: Gateway,
    user_id: str,
    resource: Mapping[str, Any],
    *,
    deadline: float,
) -> GenesysUser:
    """Restore ``user_id`` (a deleted user), then apply the resource's attributes and state.

    Restoring gives an active user in Home with no roles of its own (2.4); the new attributes are
    one PATCH that replaces every mapped field, as a PUT would, and every contact: what the
    deleted user held and the resource does not set (a title, another work email, a phone) is
    the previous life's, which a reused address may not share. ``active: false`` in the resource
    leaves it inactive. Raises ``Unrestorable``."""
    with translated("User"):
        try:
            gateway.restore_user(user_id, deadline=deadline)
        except gerrors.Unrestorable as e:
            raise Unrestorable(
                f"userName {mapping.create_fields(resource).email!r} belongs to a deleted Genesys "
                f"Cloud user ({user_id}) that Genesys refuses to restore: users deleted through "
                f"the GDPR API cannot be undeleted ({e.message})."
            ) from e
    with translated("User"):
        user = gateway.update_user(user_id, mapping.user_fields(resource), deadline=deadline)
    if mapping.wanted_active(resource) is False:
        with translated("User"):
            user = gateway.set_state(user_id, "inactive", current=user, deadline=deadline)
    return user
