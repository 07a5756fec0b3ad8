"""The job record: everything a deprovisioning job knows, typed and immutable.

``Job`` is what the model's transitions take and return (``model.decide``, ``model.command``) and
what ``jobs.py`` stores: the columns the queue is queried by (state, step, due time, lease) and
the rest as one JSON document with a schema version. Serialising happens in ``jobs.py`` only
(``jobs.dump_data`` / ``jobs.load_data``).

Adding what a later feature must remember: a field with a default on the sub-record it belongs
to (``Snapshot`` for more of the user's footprint, ``History`` for more proof, ``Memberships``
for more group or queue state), two lines in ``jobs.py`` (dump and load), and a row written
before it still loads with the default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from scim_bridge.deprovision.evidence import Window

Action = Literal["deactivate", "reactivate", "delete"]
JobState = Literal["pending", "running", "waiting", "held", "done", "failed", "cancelled"]
Step = Literal[
    "snapshot",
    "guard",
    "await_idle",
    "deactivate",
    "breaker",
    "drain",
    "verify_before",
    "delete",
    "confirm_deleted",
    "verify_after",
    "restore",
    "confirm_restored",
    "tombstone",
    "activate",
    "restore_division",
    "restore_roles",
    "restore_skills",
    "restore_languages",
    "restore_queues",
    "verify_restore",
    "done",
]

OPEN_STATES: tuple[JobState, ...] = ("pending", "running", "waiting", "held")
FINISHED_STATES: tuple[JobState, ...] = ("done", "failed", "cancelled")

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class QueueRef:
    """A queue membership: the queue, its name when known, and whether the user had joined."""

    id: str
    name: str | None = None
    joined: bool = True


@dataclasses.dataclass(frozen=True, order=True)
class Grant:
    """A role granted to the user itself in a division (what deactivation and delete remove,
    genesys-api.md 2.4); names for people reading the record."""

    role_id: str
    division_id: str
    role_name: str | None = None
    division_name: str | None = None


@dataclasses.dataclass(frozen=True, order=True)
class Level:
    """A routing skill or language and its proficiency (0.0 to 5.0)."""

    id: str
    proficiency: float
    name: str | None = None


@dataclasses.dataclass(frozen=True)
class Footprint:
    """What an admin gave the user beyond the profile (issue 12): the division, the roles granted
    to the user itself, routing skills and languages; ``group_ids`` for people (group-granted
    roles stay with the group through deactivation, so there is nothing to restore there), None
    when Genesys did not say."""

    division_id: str | None = None
    grants: tuple[Grant, ...] = ()
    skills: tuple[Level, ...] = ()
    languages: tuple[Level, ...] = ()
    group_ids: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The user as the job first read them: profile (``GenesysUser`` fields), queues and the
    footprint (None: not read: a row written before issue 12, or the client may not read grants,
    ``footprint_error`` says why)."""

    user: Mapping[str, Any]
    queues: tuple[QueueRef, ...] = ()
    at: float = 0.0
    footprint: Footprint | None = None
    footprint_error: str | None = None
    # False: the memberships were left to the drain, after the deactivation (which leaves them
    # as they are), for the worker to read with other deletes' in bulk (issue 11); the drain
    # records them here before it removes any (so a crash between removal and record is still
    # recorded as removed, as for a snapshot that listed them).
    queues_read: bool = True


@dataclasses.dataclass(frozen=True)
class Restoration:
    """A reactivation's restore of the footprint (issue 12).

    ``target``: the snapshot taken before the first change (``jobs.restorable_footprint``), from
    the job that took it (``source_job_id``). ``failed``: per part, the error of a restore Genesys
    refused for good (recorded, never dropped: the check then shows the part as missing).
    ``difference``: per part, what the check after the restore found still missing (empty:
    everything is back); None until checked."""

    target: Footprint | None = None
    source_job_id: str | None = None
    failed: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    difference: Mapping[str, Any] | None = None
    # A re-hire's reactivation (REHIRE_RESTORE_FOOTPRINT): restore what the delete's epoch held.
    after_delete: bool = False


@dataclasses.dataclass(frozen=True)
class EvidencePart:
    """What one API answered for one side of the proof (``deprovision/proof.py``): the async
    details job from ``since`` to ``until`` as far as the data lake reached
    (``data_availability``), or the synchronous query over the tail the lake does not hold."""

    api: str  # "POST /api/v2/analytics/conversations/details/jobs" or ".../details/query"
    since: datetime
    until: datetime
    count: int
    sha256: str
    calls: int  # requests it took (shared by ``users``)
    users: int  # users the request(s) served
    data_availability: datetime | None = None
    job_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Evidence:
    """One side of the history proof (``evidence.shown`` renders it): what analytics attributed.

    ``count``/``sha256``: over every part; ``parts``: what each API covered (none in evidence
    recorded before the proof had parts: the synchronous query over ``window``)."""

    count: int
    sha256: str
    sample: tuple[str, ...]
    window: Window
    analytics_queries: int
    users_in_query: int
    missing_count: int | None = None
    missing_sample: tuple[str, ...] | None = None
    parts: tuple[EvidencePart, ...] = ()


@dataclasses.dataclass(frozen=True)
class PendingJob:
    """An async details job Genesys is running for the job's current history check: the job
    waits for it and, after a crash, whoever resumes polls the same ``job_id``."""

    job_id: str
    user_ids: tuple[str, ...]  # the users it was submitted for (a batch shares one)
    since: datetime
    until: datetime
    submitted_at: float
    resubmits: int = 0  # FAILED / EXPIRED ones replaced so far, in a row
    polls: int = 0  # status reads that found it running
    calls: int = 1  # requests spent on it so far (replaced jobs included)
    lost_reason: str | None = None  # why the previous one was replaced


@dataclasses.dataclass(frozen=True)
class History:
    """The proof kept for a delete: both sides' evidence and what the check after needs of the
    check before: every id found, the ids the async job found (``before_lake_ids``, over
    ``before_lake_window``), and the ids the synchronous tail found per interval of
    ``before_tail_window`` (``before_intervals``), so that the check after looks again only
    where something was found. ``pending``: the async job the current check waits for."""

    before: Evidence | None = None
    after: Evidence | None = None
    before_ids: frozenset[str] | None = None
    before_intervals: Mapping[str, frozenset[str]] | None = None
    before_lake_ids: frozenset[str] | None = None
    before_lake_window: Window | None = None
    before_tail_window: Window | None = None
    pending: PendingJob | None = None
    # The ids the last check found missing (a held mismatch names them), and what operators
    # accepted as missing. ``before`` and ``before_ids`` are never replaced once captured.
    missing: frozenset[str] | None = None
    accepted: tuple[Acceptance, ...] = ()

    @property
    def accepted_ids(self) -> frozenset[str]:
        found: frozenset[str] = frozenset()
        return found.union(*(a.ids for a in self.accepted))


@dataclasses.dataclass(frozen=True)
class Unremoved:
    """A queue membership Genesys refused to remove (a ``memberBy=group`` membership answers 400,
    genesys-api.md 3), with what it answered. The user is inactive already: it is recorded,
    retried with backoff, and shown to operators, never a reason to keep access."""

    queue: QueueRef
    error: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Memberships:
    """Queue memberships the job removed, is to restore (reactivate) and restored, and those the
    last drain could not remove (``unremoved``)."""

    removed: tuple[QueueRef, ...] = ()
    to_restore: tuple[QueueRef, ...] | None = None
    restored: tuple[QueueRef, ...] | None = None
    unremoved: tuple[Unremoved, ...] = ()


@dataclasses.dataclass(frozen=True)
class ForcedCut:
    """Access is to be cut without waiting any longer for a live conversation: an operator's
    ``cut-access`` (``by`` is the operator) or ``ACTIVE_CONVERSATION_WAIT`` run out (``by`` is
    ``policy:active-conversation-wait``). Sessions are revoked at once; the deactivation is
    retried until Genesys allows it."""

    by: str
    reason: str
    at: float


@dataclasses.dataclass(frozen=True)
class Acceptance:
    """An operator accepted these conversations as missing after a delete (a held history
    mismatch): who, why, when. The check after the next delete does not look for them again."""

    ids: frozenset[str]
    by: str
    reason: str
    at: float


@dataclasses.dataclass(frozen=True)
class Job:
    """A job, as the ``jobs`` table holds it (``jobs.JobRow`` is this type)."""

    id: str
    user_id: str
    action: Action
    state: JobState
    step: Step
    requested_by: str
    created_at: float
    updated_at: float
    due_at: float
    attempts: int = 0  # consecutive failed attempts at this step
    idp: str | None = None
    scim_id: str | None = None
    from_policy: bool = False  # scheduled by DELETE_INACTIVE_AFTER, not asked for by an IdP
    dry_run: bool = False
    waiting_on: str | None = None
    reason: str | None = None  # why it is held, failed or cancelled
    approved_by: str | None = None  # an operator approved it (past the delete breaker)
    cancel_requested: bool = False
    guarded_for_delete: bool = False  # the guard ran (and passed) for a delete
    delete_counted_at: float | None = None  # counts against the delete breaker from then
    access_cut_at: float | None = None  # the deactivate step succeeded
    sessions_revoked_at: float | None = None  # DELETE /api/v2/tokens/{userId} succeeded
    forced: ForcedCut | None = None  # cut access without waiting (operator or the wait ran out)
    waiting_since: float | None = None  # when the wait for an active conversation began
    finished_at: float | None = None
    claimed_by: str | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    snapshot: Snapshot | None = None
    queues: Memberships = Memberships()
    history: History = History()
    restoration: Restoration = Restoration()
    plan: tuple[Mapping[str, Any], ...] | None = None  # DRY_RUN: what would have been done
    # stored keys this version does not know (kept on save)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def approved(self) -> bool:
        return self.approved_by is not None

    @property
    def access_cut(self) -> bool:
        return self.access_cut_at is not None


def footprint_to(fp: Footprint) -> dict[str, Any]:
    """A footprint as JSON (the job's snapshot, the tombstone's detail)."""
    return {
        "division_id": fp.division_id,
        "grants": [dataclasses.asdict(g) for g in fp.grants],
        "skills": [dataclasses.asdict(level) for level in fp.skills],
        "languages": [dataclasses.asdict(level) for level in fp.languages],
        "group_ids": list(fp.group_ids) if fp.group_ids is not None else None,
    }


def footprint_from(value: Mapping[str, Any] | None) -> Footprint | None:
    if value is None:
        return None
    groups = value.get("group_ids")
    return Footprint(
        division_id=value.get("division_id"),
        grants=tuple(Grant(**g) for g in value.get("grants", ())),
        skills=tuple(Level(**v) for v in value.get("skills", ())),
        languages=tuple(Level(**v) for v in value.get("languages", ())),
        group_ids=tuple(groups) if groups is not None else None,
    )
