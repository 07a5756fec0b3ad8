"""Bearer-token authentication for every ``/scim/v2`` request (only ``/healthz`` is open).

Accepted forms of the ``Authorization`` header:

* ``Bearer <token>`` (RFC 6750; Entra, Okta "Bearer" mode);
* ``<token>`` alone: Okta's OIN "Header" mode sends the API token with no scheme (O-OIN), so a
  bridge accepting only ``Bearer`` would fail those integrations.

Anything else is a 401 with a SCIM error body (Okta's SPEC test checks ``status`` "401" and
``detail``). Failures are logged and audited (throttled), never with the presented value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import g, request

from scim_bridge.audit.throttle import AUDIT_THROTTLE_S, FailureThrottle
from scim_bridge.scim.errors import Unauthorized
from scim_bridge.scim.tokens import TokenIdentity

log = logging.getLogger(__name__)

__all__ = ["AUDIT_THROTTLE_S", "FailureThrottle", "authenticate", "presented_token"]


def presented_token(header: str | None) -> str | None:
    if not header:
        return None
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    if rest:
        if scheme.lower() != "bearer":
            return None
        rest = rest.strip()
        return rest if rest and " " not in rest else None
    return value  # Okta header mode: the token alone


def authenticate(
    identify: Callable[[str], TokenIdentity | None], on_failure: Callable[[str], None]
) -> str:
    """The token name for this request, or raise ``Unauthorized``. The whole identity (scopes,
    IdP) is on ``g.scim_identity`` (``context.identity()``)."""
    token = presented_token(request.headers.get("Authorization"))
    found = identify(token) if token else None
    if found is None:
        reason = "missing" if not request.headers.get("Authorization") else "invalid"
        log.warning("SCIM authentication failed", extra={"reason": reason, "path": request.path})
        on_failure(reason)
        raise Unauthorized(
            "Authentication failed: send 'Authorization: Bearer <token>' with a token from "
            "'scim-bridge tokens create'."
        )
    g.scim_identity = found
    g.scim_token_name = found.name
    return found.name
