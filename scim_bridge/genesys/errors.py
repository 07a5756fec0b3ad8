"""The bridge's own exceptions for Genesys failures.

Nothing outside ``scim_bridge.genesys`` ever sees an ``ApiException`` or a urllib3 error: the
gateway maps them here (``raise ... from e``). Each carries only what is safe to log: the HTTP
status, the Genesys error ``code``, a short message and the ``inin-correlation-id``, never
headers, tokens or the raw body.
"""

from __future__ import annotations


class GenesysError(Exception):
    """Base class. ``status`` is the HTTP status (0 when no response came back)."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code
        self.correlation_id = correlation_id
        # When Genesys named a time to come back (``Retry-After`` on a 429 or 503), for a caller
        # that schedules the retry itself (a deprovisioning job, SCIM_ACK=strict's 503).
        self.retry_after_s = retry_after_s

    @property
    def transient(self) -> bool:
        """True when trying again later may succeed (rate limit, outage, conflict)."""
        return False

    def describe(self) -> dict[str, object]:
        """A dict fit for an audit event's detail: no secrets, no raw bodies."""
        return {
            "error": type(self).__name__,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "correlation_id": self.correlation_id,
            "retry_after_s": self.retry_after_s,
        }


class NotFound(GenesysError):
    status = 404


class BadRequest(GenesysError):
    """400 (and other 4xx the bridge cannot fix by retrying)."""

    status = 400


class Conflict(GenesysError):
    """409 ``general.conflict``: e.g. a duplicate email on create (deleted users included)."""

    status = 409


class VersionConflict(Conflict):
    """409 on a stale ``version`` that survived the gateway's own re-read-and-retry."""

    @property
    def transient(self) -> bool:
        return True


class ActiveConversation(Conflict):
    """409 on deactivation while the user has an active conversation (sandbox's stricter reading)."""

    @property
    def transient(self) -> bool:
        return True


class PermissionDenied(GenesysError):
    """403 ``missing.any.permissions`` / ``missing.permissions`` / ``not.authorized``: a person must
    grant the OAuth client a role; retrying will not help."""

    status = 403


class AuthenticationFailed(GenesysError):
    """The client credentials themselves were refused (bad id or secret)."""

    status = 401


class RateLimited(GenesysError):
    """429 that the gateway could not wait out within the caller's deadline."""

    status = 429

    @property
    def transient(self) -> bool:
        return True


class Unavailable(GenesysError):
    """5xx, timeouts and connection errors that outlasted the retry policy and the deadline."""

    status = 503

    @property
    def transient(self) -> bool:
        return True


class Unrestorable(GenesysError):
    """A deleted user Genesys refuses to restore: one deleted through the GDPR API "cannot be
    undeleted" (genesys-api.md 2.4). Final; ``status`` is what Genesys answered."""

    status = 400
