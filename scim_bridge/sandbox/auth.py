"""OAuth clients, client-credentials tokens and the permission check (genesys-api.md 1.1, 1.3, 5.5).

A client-credentials token is authorised by the permissions of its OAuth client, not by scopes
(genesys-api.md 1.1), so a token simply remembers which client it was issued to.

A user's session (``POST /sandbox/users/{id}/sessions``, standing in for a person signing in to
Genesys) is a token that remembers its user instead: it authenticates as that user (``GET
/api/v2/users/me``) and holds no permissions of its own here. It lives until it expires or
``DELETE /api/v2/tokens/{userId}`` ends it; deactivating or deleting the user does not end it
(UNCONFIRMED; the stricter reading, docs/sandbox.md).
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
    user_id: str | None = None  # a user's session, not a client-credentials token


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
            self._tokens[value] = Token(
                token.value, token.client_id, token.issued_at, now, token.user_id
            )
        return len(self._tokens)

    def sign_in(self, user_id: str, now: float, ttl_s: int) -> Token:
        """A session for ``user_id``, as a person signing in to Genesys gets."""
        token = Token(secrets.token_urlsafe(32), "", now, now + ttl_s, user_id)
        self._tokens[token.value] = token
        return token

    def sessions(self, user_id: str, now: float) -> list[Token]:
        """The user's sessions that still authenticate."""
        return [t for t in self._tokens.values() if t.user_id == user_id and now < t.expires_at]

    def revoke_user(self, user_id: str) -> int:
        """End every session of ``user_id`` (``DELETE /api/v2/tokens/{userId}``); how many."""
        ended = [v for v, t in self._tokens.items() if t.user_id == user_id]
        for value in ended:
            del self._tokens[value]
        return len(ended)

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
        if token is not None and token.user_id is not None:
            client = Client(f"user:{token.user_id}", "", frozenset())
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
