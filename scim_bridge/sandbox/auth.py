"""OAuth clients, client-credentials tokens and the permission check (genesys-api.md 1.1, 1.3, 5.5).

A client-credentials token is authorised by the permissions of its OAuth client, not by scopes
(genesys-api.md 1.1), so a token simply remembers which client it was issued to.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from scim_bridge.sandbox.errors import ApiError


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str
    permissions: frozenset[str] | None  # None: every permission (the default client)

    def allows_any(self, needed: tuple[str, ...]) -> bool:
        return self.permissions is None or not needed or bool(self.permissions & set(needed))


@dataclass(frozen=True)
class Token:
    value: str
    client_id: str
    issued_at: float
    expires_at: float


class Clients:
    def __init__(self, default: Client) -> None:
        self._clients = {default.client_id: default}
        self._tokens: dict[str, Token] = {}

    def register(self, client: Client) -> None:
        self._clients[client.client_id] = client

    def get(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def authenticate(self, client_id: str, secret: str) -> Client | None:
        client = self._clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, secret):
            return None
        return client

    def issue(self, client: Client, now: float, ttl_s: int) -> Token:
        token = Token(secrets.token_urlsafe(32), client.client_id, now, now + ttl_s)
        self._tokens[token.value] = token
        return token

    def expire_all(self, now: float) -> int:
        """Expire every token now (``POST /sandbox/tokens/expire``): a mid-run expiry on demand."""
        for value, token in list(self._tokens.items()):
            self._tokens[value] = Token(token.value, token.client_id, token.issued_at, now)
        return len(self._tokens)

    def check(self, authorization: str | None, now: float) -> tuple[Token, Client]:
        """The token and client behind an ``Authorization`` header, or the 401 Genesys sends."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise ApiError(
                401,
                "No authentication bearer token specified in authorization header.",
                "authentication.required",
            )
        token = self._tokens.get(authorization[7:].strip())
        client = self._clients.get(token.client_id) if token else None
        if token is None or client is None:
            raise ApiError(401, "Invalid login credentials.", "bad.credentials")
        if now >= token.expires_at:
            raise ApiError(
                401,
                "The supplied credentials are expired and cannot be used.",
                "credentials.expired",
            )
        return token, client


def require_any(client: Client, needed: tuple[str, ...]) -> None:
    """403 ``missing.any.permissions`` unless ``client`` holds one of ``needed`` (5.4, 5.5)."""
    if client.allows_any(needed):
        return
    listed = ", ".join(needed)
    message = (
        "Unable to perform the requested action. You must have at least one of the following "
        f"permissions assigned: [{listed}]"
    )
    raise ApiError(
        403,
        message,
        "missing.any.permissions",
        message_with_params=message,
        message_params={"permissions": listed},
    )
