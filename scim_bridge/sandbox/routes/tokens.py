"""Tokens API: end a user's sessions (``DELETE /api/v2/tokens/{userId}``).

PYDOCS ``TokensApi.md`` ``delete_token``: "Delete all auth tokens for the specified user", wraps
``DELETE /api/v2/tokens/{userId}``, requires ANY of ``oauth:token:delete``, returns no body (the
SDK's ``response_type=None``). The status (204 here) and the answer for an unknown user (404
here) are UNCONFIRMED (docs/sandbox.md).
"""

from __future__ import annotations

from flask import Blueprint, Response

from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.http import empty, require, sandbox

bp = Blueprint("tokens", __name__)

DELETE_TOKENS = ("oauth:token:delete",)


@bp.delete("/api/v2/tokens/<user_id>")
def delete_user_tokens(user_id: str) -> Response:
    """Every session of the user ends now, whatever the user's state (deleted users included)."""
    require(*DELETE_TOKENS)
    state = sandbox()
    with state.lock:
        if user_id not in state.org.users:
            raise ApiError.not_found("user", user_id)
        state.clients.revoke_user(user_id)
    return empty(204)
