"""What the rest of the bridge may ask of Genesys: the gateway's interface.

``SdkGateway`` (``gateway.py``) implements it over ``PureCloudPlatformClientV2``; nothing else in
the bridge implements it, and tests run it against the sandbox over loopback HTTP.

Every call takes an optional ``deadline`` (a ``time.monotonic()`` value). Within it the gateway
waits out 429s (honouring ``Retry-After``), backs off with jitter on 5xx and connection errors,
re-fetches an expired token, and stays inside the client-side rate budget. When the deadline would
be passed it raises the matching transient error (``RateLimited`` or ``Unavailable``) instead of
sleeping past it. ``None`` means the gateway's default per-call deadline. Every error carries
``retry_after_s`` when Genesys named a time to come back (``errors.GenesysError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from scim_bridge.genesys.errors import GenesysError
from scim_bridge.genesys.types import (
    CallRecord,
    ConversationsById,
    ConversationStatus,
    Criterion,
    Division,
    Footprint,
    GenesysUser,
    Group,
    History,
    HistoryJob,
    HistoryJobResults,
    HistoryQuery,
    Page,
    Proficiency,
    QueueMembership,
    RoleGrant,
    UserFields,
    UserState,
)

Observer = Callable[[CallRecord], None]


class Gateway(Protocol):
    # --- session -------------------------------------------------------------------------
    def ensure_token(self, *, deadline: float | None = None) -> None:
        """Log in (client credentials) unless a token is held and not near expiry."""

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer`` after every HTTP exchange (including token fetches and retries)."""

    # --- users ---------------------------------------------------------------------------
    def get_user(
        self,
        user_id: str,
        *,
        include_deleted: bool = False,
        expect_deleted: bool = False,
        deadline: float | None = None,
    ) -> GenesysUser:
        """GET /api/v2/users/{id}; with ``include_deleted`` falls back to ``?state=deleted``.

        ``expect_deleted`` (implies ``include_deleted``): asks ``?state=deleted`` first and falls
        back to the default read, one call instead of two when the user is deleted, as a caller
        confirming its own delete expects. Raises ``NotFound``."""

    def get_users(
        self, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, GenesysUser]:
        """Bulk read (GET /api/v2/users?id=...&state=any); ids not found are absent."""

    def list_users(
        self,
        *,
        page_number: int = 1,
        page_size: int = 100,
        state: str = "any",
        deadline: float | None = None,
    ) -> Page[GenesysUser]:
        """GET /api/v2/users, ascending by name (stable for paging)."""

    def search_users(
        self,
        criteria: Sequence[Criterion],
        *,
        page_number: int = 1,
        page_size: int = 100,
        deadline: float | None = None,
    ) -> Page[GenesysUser]:
        """POST /api/v2/users/search, sorted by name ascending. Deleted users are not returned."""

    def create_user(
        self, fields: UserFields, *, state: UserState = "active", deadline: float | None = None
    ) -> GenesysUser:
        """POST /api/v2/users. A duplicate email (a deleted user's included) raises ``Conflict``."""

    def update_user(
        self,
        user_id: str,
        fields: UserFields,
        *,
        version: int | None = None,
        deadline: float | None = None,
    ) -> GenesysUser:
        """PATCH /api/v2/users/{id} with the profile fields that are not None.

        With ``version`` given the change is conditional: a stale version raises
        ``VersionConflict`` (SCIM If-Match). Without it the gateway reads the current version and
        re-reads and retries on 409 (bounded). ``division_id`` is not sent: ``UpdateUser`` has no
        division (genesys-api.md 2.3), a division is chosen at create time only.
        """

    def set_state(
        self,
        user_id: str,
        state: UserState,
        *,
        current: GenesysUser | None = None,
        deadline: float | None = None,
    ) -> GenesysUser:
        """Move a user to ``active`` or ``inactive`` (restores a deleted user too: an undelete
        comes back ``active`` whatever was asked (genesys-api.md 2.4), so ``inactive`` on a
        deleted user is two PATCHes, and the user is active in between; see ``restore_user``).

        Re-reads the user first (``?state=deleted`` when needed) and does nothing when it is
        already in ``state``; PATCHes ``{"state", "version"}`` alone; re-reads and retries on a
        409 version conflict. A 409 for an active conversation raises ``ActiveConversation``.
        ``current``: a read of this user the caller has just made, used instead of the first
        re-read (a stale version is a 409 and a re-read, as any race).
        """

    def revoke_sessions(self, user_id: str, *, deadline: float | None = None) -> bool:
        """End every session of the user: ``DELETE /api/v2/tokens/{userId}`` ("Delete all auth
        tokens for the specified user", PYDOCS ``TokensApi.delete_token``; permission
        ``oauth:token:delete``). Deactivation is not documented to end sessions. False when
        Genesys does not know the user (404): there is nothing to end."""

    def delete_user(self, user_id: str, *, deadline: float | None = None) -> None:
        """DELETE /api/v2/users/{id} (a soft delete to ``state=deleted``).
        Succeeds quietly when the user is already deleted."""

    # --- routing -------------------------------------------------------------------------
    def user_queues(
        self, user_id: str, *, deadline: float | None = None
    ) -> tuple[QueueMembership, ...]:
        """Every queue membership, joined and unjoined, all pages (GET /users/{id}/queues)."""

    def queue_memberships(
        self, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, tuple[QueueMembership, ...]]:
        """``user_queues`` for many users, by whichever reading costs fewer calls: each user's two
        listings, or (from 10 users) the org's queues (``GET /routing/queues``, with
        ``memberCount``) and the members of each queue that has any
        (``GET /routing/queues/{q}/members``, 100 a page, each with ``joined``; genesys-api.md 3).
        A queue member not in its queue's listing is not a member: every user asked for has an
        entry, possibly empty."""

    def remove_queue_member(
        self, queue_id: str, user_id: str, *, deadline: float | None = None
    ) -> None:
        """DELETE /api/v2/routing/queues/{q}/members/{userId}; already gone is success."""

    def remove_queue_members(
        self, queue_id: str, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, GenesysError]:
        """Bulk removal: POST /api/v2/routing/queues/{q}/members?delete=true ``[{id}, ...]``,
        100 users a request (genesys-api.md 3; TF chunks by 100); same permissions as the single
        DELETE. Users already gone, and a queue that is gone, are success. Returns the users
        Genesys refused to remove (a 400: a membership a group gives, UNCONFIRMED), each with its
        error: a chunk refused as a whole is retried one DELETE a user, so one such member costs
        only itself. Anything else (429 past the deadline, 403, 5xx) raises for every user."""

    def add_queue_member(
        self, queue_id: str, user_id: str, *, deadline: float | None = None
    ) -> None:
        """POST /api/v2/routing/queues/{q}/members ``[{id}]``. A new member's joined flag is not
        documented (the sandbox starts it unjoined): set it with ``set_queues_joined``, which
        takes every queue of a restore in one request."""

    def set_queues_joined(
        self, user_id: str, joined: Mapping[str, bool], *, deadline: float | None = None
    ) -> None:
        """PATCH /api/v2/users/{id}/queues ``[{id, joined}]``: join or unjoin queues the user is a
        member of (permissions ``routing:queue:join`` or ``routing:queueMember:manage``,
        genesys-api.md 3); pairs for other queues are disregarded. 100 pairs a request (no
        documented bound)."""

    def conversation_status(
        self, user_id: str, *, deadline: float | None = None
    ) -> ConversationStatus:
        """GET /api/v2/users/{id}?expand=conversationSummary, summed over media; ``.user`` is
        the user that GET returned. A summary Genesys left out (best effort) is ``known=False``
        (``busy`` None), never an error."""

    # --- the footprint: roles, divisions, skills, languages (issue 12) ----------------------
    def user_footprint(
        self, user_id: str, *, grants: bool = True, deadline: float | None = None
    ) -> Footprint:
        """The user's division, role grants, routing skills and languages and groups.

        One ``GET /users/{id}?expand=skills,languages,groups,conversationSummary`` (the summary
        is ``Footprint.conversations``: the same read answers the active-conversation check) and one
        ``GET /authorization/subjects/{id}?includeDuplicates=true`` (grants split by subject, as
        TF does); a skills or languages expand Genesys left out is read from
        ``/users/{id}/routingskills`` or ``/routinglanguages``. Raises ``NotFound`` for a
        deleted or unknown user. Needs ``authorization:grant:view``. ``grants=False``: the
        subjects read is left out (``grants`` and ``group_grants`` empty: not read)."""

    def footprints(
        self, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, Footprint]:
        """``user_footprint`` for many users: one bulk read with the expands
        (``GET /users?id=...&state=any&expand=...``, 100 ids a call) and each user's grants read;
        deleted and unknown users are absent."""

    def role_grants(self, user_id: str, *, deadline: float | None = None) -> tuple[RoleGrant, ...]:
        """Every grant the user holds, its own and its groups' (``subject_id`` tells them apart):
        GET /authorization/subjects/{id}?includeDuplicates=true. ``authorization:grant:view``."""

    def grant_roles(
        self, user_id: str, grants: Sequence[RoleGrant], *, deadline: float | None = None
    ) -> None:
        """POST /authorization/subjects/{id}/bulkadd with each (role, division) once, in chunks;
        granting what is held already changes nothing. Needs ``authorization:grant:add``."""

    def assign_skills(
        self, user_id: str, skills: Sequence[Proficiency], *, deadline: float | None = None
    ) -> None:
        """PATCH /users/{id}/routingskills/bulk (adds or updates, never removes), at most 50 a
        request. Needs ``routing:skill:assign``."""

    def assign_languages(
        self, user_id: str, languages: Sequence[Proficiency], *, deadline: float | None = None
    ) -> None:
        """PATCH /users/{id}/routinglanguages/bulk, at most 50 a request. Needs
        ``routing:language:assign`` (or ``routing:skill:assign``)."""

    def move_to_division(
        self, user_id: str, division_id: str, *, deadline: float | None = None
    ) -> None:
        """POST /authorization/divisions/{d}/objects/USER with the user (idempotent)."""

    def home_division(self, *, deadline: float | None = None) -> Division:
        """GET /authorization/divisions/home (no permission needed)."""

    def restore_user(self, user_id: str, *, deadline: float | None = None) -> GenesysUser:
        """Undelete a deleted user (PATCH ``state=active`` with the ``?state=deleted`` version,
        as TF's ``restoreDeletedUser``); an active or inactive user is returned as it is.
        Raises ``Unrestorable`` when Genesys refuses (a GDPR-deleted user, 2.4).

        Answers the user as the PATCH returned it, so its ``state`` is the restore's resulting
        state: ``active`` (an undelete "restores the user to active status", 2.4, whatever was
        asked), so the person can sign in again until deactivated."""

    # --- analytics -----------------------------------------------------------------------
    def conversation_history(
        self, query: HistoryQuery, *, deadline: float | None = None
    ) -> History:
        """Conversations attributed to each of ``query.user_ids`` between since and until.

        POST /api/v2/analytics/conversations/details/query with one ``userId`` predicate per
        user in a single ``or`` segment filter, the window split into intervals Genesys accepts,
        each paged to its end (``history.py``: the empty page; a short page of a closed interval
        that covers ``totalHits``), de-duplicated by conversationId. With ``query.expected``
        only what is needed to confirm those ids (``HistoryQuery``).
        """

    def submit_history_job(
        self,
        user_ids: Sequence[str],
        since: datetime,
        until: datetime,
        *,
        deadline: float | None = None,
    ) -> str:
        """POST /api/v2/analytics/conversations/details/jobs for up to 100 users over
        since..until, as one interval (jobs have no 31-day limit; "had activity during"
        semantics, genesys-api.md 4.3). Returns the jobId (202). The org's limit on running
        jobs answers 429, which the gateway backs off from like any 429 (``RateLimited`` past
        the deadline). Raises ``ValueError`` for no users, more than 100, or an empty window."""

    def history_job(self, job_id: str, *, deadline: float | None = None) -> HistoryJob:
        """GET .../details/jobs/{jobId}: QUEUED, PENDING, FULFILLED, or lost (FAILED, CANCELLED,
        EXPIRED). An id Genesys no longer knows raises ``NotFound``."""

    def history_job_results(
        self, job_id: str, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> HistoryJobResults:
        """Every page of a FULFILLED job's results, by cursor until a page carries none,
        attributed to ``user_ids``. Expired results raise ``NotFound``; a job that is not
        fulfilled, ``BadRequest`` (the sandbox's reading; UNCONFIRMED)."""

    def data_availability(self, *, deadline: float | None = None) -> datetime:
        """GET .../details/jobs/availability: how far the data lake (what jobs see) reaches."""

    def conversations_by_id(
        self,
        conversation_ids: Sequence[str],
        user_ids: Sequence[str],
        *,
        deadline: float | None = None,
    ) -> ConversationsById:
        """GET /api/v2/analytics/conversations/details?id=... ("Gets multiple conversations by
        id", ``get_analytics_conversations_details``), ``history.MAX_IDS_BY_ID`` ids a call:
        which of ``conversation_ids`` Genesys still has with a participant carrying each of
        ``user_ids``. An id it does not return counts as not found (the sandbox leaves unknown
        ids out; whether Genesys does the same or refuses the call is UNCONFIRMED)."""

    # --- groups (genesys-api.md 7) ---------------------------------------------------------
    def list_groups(
        self, *, page_number: int = 1, page_size: int = 100, deadline: float | None = None
    ) -> Page[Group]: ...

    def search_groups(
        self,
        criteria: Sequence[Criterion],
        *,
        page_number: int = 1,
        page_size: int = 100,
        deadline: float | None = None,
    ) -> Page[Group]: ...

    def get_group(self, group_id: str, *, deadline: float | None = None) -> Group: ...

    def create_group(
        self, name: str, *, description: str | None = None, deadline: float | None = None
    ) -> Group: ...

    def update_group(
        self,
        group_id: str,
        *,
        name: str,
        description: str | None = None,
        version: int | None = None,
        deadline: float | None = None,
    ) -> Group: ...

    def delete_group(self, group_id: str, *, deadline: float | None = None) -> None: ...

    def group_member_ids(
        self, group_id: str, *, deadline: float | None = None
    ) -> tuple[str, ...]: ...

    def add_group_members(
        self,
        group_id: str,
        user_ids: Sequence[str],
        *,
        version: int | None = None,
        deadline: float | None = None,
    ) -> None:
        """POST /groups/{id}/members with the group's current version: ``version`` when the
        caller knows it (Genesys's last answer), else read; re-read on 409."""

    def remove_group_members(
        self, group_id: str, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> None:
        """DELETE /groups/{id}/members?ids=..., at most 50 ids a request."""
