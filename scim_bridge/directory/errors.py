"""What can go wrong in the directory, in terms the SCIM layer maps to HTTP.

The gateway's exceptions (``genesys.errors``) are translated here so that ``scim/`` never needs
them. ``detail`` is safe to show a client: no tokens, no raw upstream bodies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from scim_bridge.genesys import budget
from scim_bridge.genesys import errors as g


class DirectoryError(Exception):
    def __init__(self, detail: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s


class NotFound(DirectoryError):
    """No such user or group (deleted users included)."""


class AlreadyExists(DirectoryError):
    """The userName (email) or group name is taken (in Genesys, deleted users included)."""


class VersionMismatch(DirectoryError):
    """The caller's If-Match version is not the current one."""


class Rejected(DirectoryError):
    """Genesys refused the values (e.g. an unknown manager id)."""


def members_not_found(member_ids: list[str]) -> Rejected:
    """The one answer for group members a token names but cannot have: users that do not exist
    and users out of its reach alike (trial-sec B3: the token must not tell them apart)."""
    return Rejected(f"Group members not found: {', '.join(sorted(member_ids)[:10])}.")


class NotPermitted(DirectoryError):
    """The bridge's OAuth client lacks a Genesys permission."""


class OutOfScope(DirectoryError):
    """A create or update would put a user outside the token's scope (refused before any
    Genesys write)."""


class TooMany(DirectoryError):
    """The request would need more Genesys calls than one request may make (RFC 7644 §3.4.2.2
    ``tooMany``): narrow the filter."""


class Busy(DirectoryError):
    """Genesys is rate limiting, or concurrent writers kept winning: try again later."""


class RateLimited(Busy):
    """Busy because of the Genesys rate budget (shared, or Genesys's own 429)."""


class Unavailable(DirectoryError):
    """Genesys is down or timing out."""


def not_found(what: str) -> NotFound:
    """The one answer for a resource a token cannot have: absent, deleted or out of its reach
    alike (trial-sec B3: the token must not tell them apart)."""
    return NotFound(f"{what}: not found in Genesys Cloud.")


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Run gateway calls, raising the matching ``DirectoryError`` for a Genesys failure. The calls
    count as reads for the rate budget: they leave the deprovisioning reserve alone."""
    try:
        with budget.reads():  # the directory only reads and edits: never the deprovision reserve
            yield
    except g.NotFound as e:
        raise not_found(what) from e
    except g.VersionConflict as e:
        raise Busy(f"{what}: changed concurrently in Genesys Cloud; try again.") from e
    except g.Conflict as e:
        raise AlreadyExists(
            f"{what}: conflicts with an existing Genesys Cloud record ({e.message})."
        ) from e
    except g.PermissionDenied as e:
        raise NotPermitted(
            f"{what}: the bridge's Genesys OAuth client lacks a permission ({e.message})."
        ) from e
    except g.RateLimited as e:
        raise RateLimited(
            f"{what}: Genesys Cloud is rate limiting; try again later.",
            retry_after_s=e.retry_after_s,
        ) from e
    except g.BadRequest as e:
        raise Rejected(f"{what}: Genesys Cloud refused the values ({e.message}).") from e
    except g.GenesysError as e:
        raise Unavailable(f"{what}: Genesys Cloud is unavailable ({type(e).__name__}).") from e
