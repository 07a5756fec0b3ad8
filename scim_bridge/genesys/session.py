"""The client-credentials token: what it is, when it is due for renewal, and how it is asked for.

No I/O here; ``gateway.py`` performs the request through the SDK's transport.

Why the gateway does not call ``ApiClient.get_client_credentials_token``: it parses the token
response and keeps only ``access_token`` (``api_client.py:183-185``), so the lifetime
(``expires_in``) is lost, and the SDK never renews a client-credentials token (its 401 refresh
needs a ``refresh_token``, ``api_client.py:478``; genesys-api.md 1.3). The gateway sends the same
request (the SDK's login URL rule, the same Basic header and form) through the same transport,
reads ``expires_in`` from the body and hands the token to the ``ApiClient``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time

from scim_bridge.genesys.errors import AuthenticationFailed

# Genesys tokens default to 24 h (genesys-api.md 1.1); used only if a response has no expires_in.
DEFAULT_LIFETIME_S = 86400.0
# Renew this long before expiry, but never earlier than at 80% of the lifetime (short test TTLs).
RENEW_BEFORE_S = 60.0
RENEW_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class Token:
    value: str = dataclasses.field(repr=False)
    obtained_at: float  # time.monotonic()
    lifetime_s: float

    @property
    def renew_at(self) -> float:
        return (
            self.obtained_at
            + self.lifetime_s
            - min(RENEW_BEFORE_S, RENEW_FRACTION * self.lifetime_s)
        )

    def fresh(self, now: float) -> bool:
        return now < self.renew_at


def token_request(client_id: str, client_secret: str) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and form of the client-credentials request (as ``api_client.py:160-172``)."""
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return headers, {"grant_type": "client_credentials"}


def parse_token_response(body: str, *, now: float) -> Token:
    """``{"access_token", "token_type", "expires_in"}`` -> :class:`Token`."""
    try:
        data = json.loads(body)
        value = data["access_token"]
    except (ValueError, KeyError, TypeError) as e:
        raise AuthenticationFailed("the token endpoint answered without an access_token") from e
    if not isinstance(value, str) or not value:
        raise AuthenticationFailed("the token endpoint answered without an access_token")
    lifetime = data.get("expires_in")
    try:
        lifetime_s = float(lifetime) if lifetime is not None else DEFAULT_LIFETIME_S
    except (TypeError, ValueError):
        lifetime_s = DEFAULT_LIFETIME_S
    return Token(value=value, obtained_at=now, lifetime_s=max(lifetime_s, 1.0))


class TokenHolder:
    """The current token, shared by every thread of one gateway.

    ``renewal`` serialises fetches: the first thread to find the token due fetches it, the others
    wait on the lock (bounded by their deadline) and then find it fresh.
    """

    def __init__(self) -> None:
        self.renewal = threading.Lock()
        self._token: Token | None = None

    def current(self, now: float | None = None) -> Token | None:
        """The token if it is not yet due for renewal."""
        token = self._token
        if token is None or not token.fresh(time.monotonic() if now is None else now):
            return None
        return token

    def value(self) -> str | None:
        token = self._token
        return token.value if token else None

    def install(self, token: Token) -> None:
        self._token = token

    def invalidate(self, value: str | None) -> None:
        """Forget the token after a 401, unless another thread has already replaced it."""
        token = self._token
        if token is not None and token.value == value:
            self._token = None
