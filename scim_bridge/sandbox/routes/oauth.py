"""``POST /oauth/token``: client credentials on the API host itself (genesys-api.md 1.1).

The SDK derives the login host by replacing ``//api.`` with ``//login.``; a plain host:port is
left as it is, so the token endpoint must live next to ``/api/v2``.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, request

from scim_bridge.sandbox.http import json_response, sandbox

bp = Blueprint("oauth", __name__)


def basic_credentials() -> tuple[str, str] | None:
    """(client_id, secret) from ``Authorization: Basic``, or from the form (RFC 6749 2.3.1)."""
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, sep, secret = decoded.partition(":")
        return (client_id, secret) if sep else None
    form_id, form_secret = request.form.get("client_id"), request.form.get("client_secret")
    if form_id and form_secret is not None:
        return form_id, form_secret
    return None


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "description": description}, status)


@bp.post("/oauth/token")
def token() -> Response:
    state = sandbox()
    if request.mimetype != "application/x-www-form-urlencoded":
        return _oauth_error(400, "invalid_request", "content type must be form urlencoded")
    credentials = basic_credentials()
    with state.lock:
        client = state.clients.authenticate(*credentials) if credentials else None
        if client is None:
            # Status 400 vs 401 is UNCONFIRMED (genesys-api.md 1.1); 401 is RFC 6749 5.2's
            # answer for a failed client authentication with an Authorization header.
            return _oauth_error(401, "invalid_client", "authentication failed")
        if request.form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "grant type not supported")
        ttl = state.faults.token_ttl_s
        issued = state.clients.issue(client, state.clock(), ttl)
        state.stats.tokens_issued += 1
    return json_response({"access_token": issued.value, "token_type": "bearer", "expires_in": ttl})
