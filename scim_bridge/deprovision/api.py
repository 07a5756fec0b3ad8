"""What the SCIM layer (and the admin API) may ask of the deprovisioning engine.

The engine implements ``Deprovisioning``; ``scim/`` codes against this file only. Nothing here
knows HTTP or SCIM JSON: the SCIM layer maps ``Outcome`` and ``Refused`` to status codes
(DESIGN.md "What the IdP is told").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal, Protocol

from scim_bridge.genesys.types import CallRecord, Footprint, GenesysUser

Action = Literal["deactivate", "reactivate", "delete"]
JobState = Literal["pending", "running", "waiting", "held", "done", "failed", "cancelled"]


@dataclasses.dataclass(frozen=True)
class Requester:
    """Who asked: the SCIM token's name (or ``admin``, ``worker``, ``policy``) and its IdP."""

    actor: str
    idp: str | None = None
    scim_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Where a job stands when the request returns.

    ``access_cut``: the user is inactive (or deleted) in Genesys now.
    ``final``: the job reached ``done`` (nothing left for the worker).
    ``durable``: the job is recorded and will be finished by the worker (the IdP may be told
    success, DESIGN.md); false only together with ``refused``.
    ``retry_after_s``: for ``SCIM_ACK=strict``, a hint for the 503 while access is not cut.
    ``user``: the user as Genesys last answered the job while this request ran it (the state
    PATCH's answer, or a read made after the job's last change to the user resource); None when
    the request did not run it or the run left no such answer. The SCIM answer is built from it
    instead of a read of its own (issue 15).
    """

    job_id: str
    action: Action
    state: JobState
    access_cut: bool
    final: bool
    durable: bool = True
    joined_existing: bool = False
    waiting_on: str | None = (
        None  # e.g. "rate-limit", "active-conversation", "genesys-outage", "approval"
    )
    retry_after_s: float | None = None
    # The user was already deleted in Genesys before this request (RFC 7644 §3.6: 404 to a DELETE).
    already_deleted: bool = False
    # Why a job is held or failed (e.g. "restore-incomplete": reactivated, a part not restored).
    reason: str | None = None
    user: GenesysUser | None = None


class Refused(Exception):
    """The request can never succeed as asked; the SCIM layer answers an error with ``detail``.

    ``reason``: ``protected`` (SCIM 403), ``not-found`` (404), ``permission`` (the OAuth client
    lacks a Genesys permission: 403 with the permission named), ``invalid`` (400).
    """

    def __init__(self, reason: str, detail: str, *, job_id: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.job_id = job_id


@dataclasses.dataclass(frozen=True)
class OpenJob:
    job_id: str
    action: Action
    state: JobState
    step: str
    created_at: str  # ISO 8601 UTC


@dataclasses.dataclass(frozen=True)
class SnapshotRead:
    """The user read with the snapshot's expands by the request that then asks for a
    deactivation (``Deprovisioning.snapshot_read``): the SCIM layer decides on it, and the job's
    snapshot takes it instead of reading the user again (issue 15: one read, not two). The
    grants are not read (``footprint.grants`` empty): the snapshot reads them, as it would.
    ``footprint`` is None when the client may not read what the expands need: ``user`` is then
    a plain read, and the snapshot reads for itself."""

    user: GenesysUser
    footprint: Footprint | None
    calls: tuple[CallRecord, ...]  # listed in the snapshot step's audit detail


class SnapshotReader:
    """How the directory reads the user for a PATCH or PUT that deactivates (its ``Reader``): as
    the job's snapshot will (``Deprovisioning.snapshot_read``), keeping the read for the job."""

    def __init__(self, read: Callable[[str], SnapshotRead]) -> None:
        self._read = read
        self.last: SnapshotRead | None = None

    def __call__(self, user_id: str) -> GenesysUser:
        self.last = self._read(user_id)
        return self.last.user


class Deprovisioning(Protocol):
    def request(
        self,
        action: Action,
        genesys_user_id: str,
        *,
        requester: Requester,
        after_delete: bool = False,
        seen: SnapshotRead | None = None,
    ) -> Outcome:
        """Record a job (or join the open one for this user), run it inline up to the sync
        budget, and report where it stands. Raises ``Refused`` for what can never succeed.
        ``after_delete``: a re-hire's reactivate, restoring the footprint and queues the user
        held before it was deleted (REHIRE_RESTORE_FOOTPRINT, issue 12). ``seen``: this
        request's ``snapshot_read`` of the user, for a deactivation's snapshot."""

    def snapshot_read(self, genesys_user_id: str) -> SnapshotRead:
        """The user as a deactivation's snapshot reads it (with the footprint's expands and the
        conversation summary; not the grants), for the request to decide on and then pass to
        ``request``. Raises the gateway's errors (``NotFound``...)."""

    def open_job(self, genesys_user_id: str) -> OpenJob | None:
        """The unfinished job for this user, if any (a pending DELETE hides the user: 404)."""
