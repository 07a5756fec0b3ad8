"""Plain, frozen values that cross the gateway boundary. No SDK model ever leaves ``genesys/``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

UserState = Literal["active", "inactive", "deleted"]
MediaType = Literal["EMAIL", "PHONE", "SMS"]


@dataclasses.dataclass(frozen=True)
class ContactInfo:
    """An entry of ``primaryContactInfo`` / ``addresses`` (genesys-api.md 2.1)."""

    address: str
    media_type: MediaType
    type: str  # PRIMARY|WORK|WORK2|WORK3|WORK4|HOME|MOBILE|MAIN|OTHER
    extension: str | None = None
    display: str | None = None
    country_code: str | None = None


@dataclasses.dataclass(frozen=True)
class GenesysUser:
    id: str
    name: str
    email: str | None
    state: UserState
    version: int
    username: str | None = None
    department: str | None = None
    title: str | None = None
    manager_id: str | None = None
    division_id: str | None = None
    preferred_name: str | None = None
    employee_id: str | None = None  # employerInfo.employeeId
    date_hire: str | None = None  # employerInfo.dateHire, YYYY-MM-DD
    primary_contact_info: tuple[ContactInfo, ...] = ()
    addresses: tuple[ContactInfo, ...] = ()


@dataclasses.dataclass(frozen=True)
class UserFields:
    """Profile fields to create or change. ``None`` means "leave as it is" on update.

    ``manager_id`` set to ``""`` clears the manager. A state change is never mixed in here:
    Genesys requires a ``state`` change to be alone in its PATCH (genesys-api.md 2.3), so it has
    its own gateway call.
    """

    name: str | None = None
    email: str | None = None
    department: str | None = None
    title: str | None = None
    manager_id: str | None = None
    division_id: str | None = None
    preferred_name: str | None = None
    employee_id: str | None = None
    date_hire: str | None = None
    addresses: tuple[ContactInfo, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    page_number: int
    page_size: int


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One ``UserSearchCriteria`` / ``GroupSearchCriteria`` (genesys-api.md 2.6).

    ``type`` is EXACT, STARTS_WITH, CONTAINS or REQUIRED_FIELDS; ``operator`` AND, OR or NOT;
    ``group`` nests criteria (their ``operator`` combining them).
    """

    type: str
    fields: tuple[str, ...] = ()
    value: str | None = None
    values: tuple[str, ...] = ()
    operator: str | None = None
    group: tuple[Criterion, ...] = ()


@dataclasses.dataclass(frozen=True)
class QueueMembership:
    queue_id: str
    queue_name: str
    joined: bool


@dataclasses.dataclass(frozen=True)
class ConversationStatus:
    """From ``expand=conversationSummary``: any contact-center or enterprise media active."""

    user_id: str
    active: int  # active conversations over all media
    acw: int  # conversations in after-call work
    # The user as the same GET returned it (state, version): a caller about to change the user's
    # state may use it instead of reading again (``Gateway.set_state(current=...)``).
    user: GenesysUser | None = None
    # False: Genesys answered without ``conversationSummary`` (expands are best effort, PYDOCS
    # ``get_user``): the counts are 0 but not known; ``busy`` is then None.
    known: bool = True

    @property
    def busy(self) -> bool | None:
        if not self.known:
            return None
        return self.active > 0 or self.acw > 0


@dataclasses.dataclass(frozen=True)
class HistoryQuery:
    """Whose history, over which window.

    ``expected``: for a check *after* a delete, what an earlier query over the same window found,
    per user and per interval (``History.by_interval``). Given for every user of a query batch, the
    gateway reads only the intervals where something was found, each only until every expected id
    has come back (a present id is proof whatever the paging does); an interval where an id stays
    missing is read to its empty page. A user without an entry is read in full.

    ``settled``: every user's access is cut and none has a live conversation (the history checks
    of a delete come after its deactivation, which Genesys refuses during one): nothing new can
    start for them, so the live interval ends on a short page as a closed one does
    (``history.last_page``), not on the empty page after it.
    """

    user_ids: tuple[str, ...]
    since: datetime
    until: datetime
    expected: Mapping[str, Mapping[str, frozenset[str]]] | None = None
    settled: bool = False


@dataclasses.dataclass(frozen=True)
class History:
    """What analytics attributes to each user over the queried window.

    ``conversations[user_id]`` is the set of conversation ids in which a participant carries that
    ``userId``. Every user asked about has a key, empty when nothing was found.
    """

    query: HistoryQuery
    conversations: Mapping[str, frozenset[str]]
    queries_made: int  # analytics requests it took (pages x intervals), for the evidence
    # Per user, the interval (as sent, "start/end") -> the ids found in it; intervals where
    # nothing was found are absent. What a later check passes back as ``HistoryQuery.expected``.
    by_interval: Mapping[str, Mapping[str, frozenset[str]]] = dataclasses.field(
        default_factory=dict
    )


AsyncJobState = Literal["QUEUED", "PENDING", "FAILED", "CANCELLED", "FULFILLED", "EXPIRED"]
RUNNING_JOB_STATES: frozenset[str] = frozenset({"QUEUED", "PENDING"})


@dataclasses.dataclass(frozen=True)
class HistoryJob:
    """An async details job's status (``AsyncQueryStatus``, genesys-api.md 4.3).

    ``state`` is Genesys's word, or ``"outdated_sdk_version"`` for one the SDK does not know
    (1.5): neither running nor fulfilled, so a caller treats it as lost, like FAILED.
    """

    job_id: str
    state: str
    error_message: str | None = None
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.state in RUNNING_JOB_STATES

    @property
    def fulfilled(self) -> bool:
        return self.state == "FULFILLED"

    @property
    def lost(self) -> bool:
        """FAILED, CANCELLED, EXPIRED (or unknown): no results will come; submit it again."""
        return not (self.running or self.fulfilled)


@dataclasses.dataclass(frozen=True)
class HistoryJobResults:
    """What a fulfilled job found for each of the users its query named.

    ``conversations[user_id]``: the conversation ids in which a participant carries that userId
    (every user asked about has a key). ``data_availability``: the ``dataAvailabilityDate`` its
    pages reported (the earliest, should they differ): the job saw data up to at least then.
    """

    job_id: str
    conversations: Mapping[str, frozenset[str]]
    data_availability: datetime | None
    pages_read: int


@dataclasses.dataclass(frozen=True)
class ConversationsById:
    """What reading conversations by id found (``Gateway.conversations_by_id``).

    ``conversations[user_id]``: the ids read in which a participant carries that userId (every
    user asked about has a key); an id Genesys did not return is in no set. ``calls``: the
    requests it took.
    """

    conversations: Mapping[str, frozenset[str]]
    calls: int


@dataclasses.dataclass(frozen=True)
class Group:
    id: str
    name: str
    version: int
    state: str = "active"
    description: str | None = None
    member_count: int = 0
    type: str = "official"
    visibility: str = "public"


@dataclasses.dataclass(frozen=True)
class CallRecord:
    """One HTTP exchange with Genesys, reported to the gateway's observers (audit detail, metrics).

    ``endpoint`` is the path template (``/api/v2/users/{userId}``), never a filled-in URL.
    """

    method: str
    endpoint: str
    status: int  # 0 when no response came back
    duration_s: float
    correlation_id: str | None = None
    retry_after_s: float | None = None


# --- the footprint (issue 12) --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, order=True)
class RoleGrant:
    """A role granted in a division (``AuthzGrant``; ``RoleDivisionPair`` when restored).

    ``subject_id`` is who holds the grant: the user itself, or a group whose role the user
    inherits (genesyscloud/user_roles ``getAssignedGrants`` keeps only the user's own). Names are
    for people reading a snapshot or an audit event; ids are what is restored.
    """

    role_id: str
    division_id: str
    subject_id: str = ""
    role_name: str | None = None
    division_name: str | None = None


@dataclasses.dataclass(frozen=True, order=True)
class Proficiency:
    """A routing skill or language on a user, 0.0 to 5.0 (``UserRoutingSkill``/``Language``)."""

    id: str
    proficiency: float
    name: str | None = None


@dataclasses.dataclass(frozen=True)
class Footprint:
    """What an admin gave a user beyond the profile, as one read found it (issue 12).

    ``grants`` are the roles granted to the user itself: those Genesys removes on deactivation
    and delete (genesys-api.md 2.4). ``group_grants`` come through role-enabled groups and stay.
    ``group_ids`` is None when Genesys left the ``groups`` expand out (expands are best effort).
    Queue memberships are read separately (``Gateway.user_queues``).
    """

    user: GenesysUser
    division_id: str | None
    grants: tuple[RoleGrant, ...]
    group_grants: tuple[RoleGrant, ...]
    skills: tuple[Proficiency, ...]
    languages: tuple[Proficiency, ...]
    group_ids: tuple[str, ...] | None
    # The same read's ``expand=conversationSummary`` (issue 11: one read serves the snapshot and
    # the active-conversation check); None when Genesys left the expand out.
    conversations: ConversationStatus | None = None

    def with_grants(self, every: Sequence[RoleGrant]) -> Footprint:
        """This footprint with the grants ``GET /authorization/subjects/{id}`` answered: the
        user's own, and those that come through its groups."""
        own = self.user.id
        return dataclasses.replace(
            self,
            grants=tuple(g for g in every if g.subject_id == own),
            group_grants=tuple(g for g in every if g.subject_id != own),
        )


@dataclasses.dataclass(frozen=True)
class Division:
    id: str
    name: str
    home: bool = False
