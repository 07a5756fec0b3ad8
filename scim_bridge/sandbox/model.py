"""The records the simulated org holds, and their JSON as the SDK's models spell it.

Field names follow the ``attribute_map`` of the SDK's models (``models/user.py``, ``group.py``,
``user_queue.py``, ``analytics_conversation_without_attributes.py`` and the models they nest), and
enum values stay inside the SDK's ``allowed_values`` so that nothing turns into
``"outdated_sdk_version"`` (genesys-api.md 1.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def iso(ts: float) -> str:
    """Genesys timestamps: ISO-8601 UTC with milliseconds and a ``Z``."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Division:
    id: str
    name: str
    description: str = ""
    home: bool = False

    def ref(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "selfUri": f"/api/v2/authorization/divisions/{self.id}",
        }

    def to_json(self) -> dict[str, Any]:
        """``AuthzDivision`` (PYDOCS ``AuthzDivision.md``)."""
        return {**self.ref(), "description": self.description, "homeDivision": self.home}


@dataclass
class Role:
    """An organization role (``DomainOrganizationRole``); ``default`` for Genesys's own roles."""

    id: str
    name: str
    description: str
    permissions: tuple[str, ...]
    default: bool = False

    def ref(self) -> dict[str, Any]:
        """``AuthzGrantRole``, as a grant names its role."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "default": self.default,
            "selfUri": f"/api/v2/authorization/roles/{self.id}",
        }

    def to_json(self, user_count: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "permissions": list(self.permissions),
            "permissionPolicies": [],
            "userCount": user_count,
            "default": self.default,
            "base": False,
            "selfUri": f"/api/v2/authorization/roles/{self.id}",
        }


@dataclass
class RoutingEntity:
    """A routing skill (``RoutingSkill``) or language (``Language``) of the org."""

    id: str
    name: str
    kind: str  # "skills" | "languages"
    date_modified: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "dateModified": iso(self.date_modified),
            "state": "active",
            "version": "1",
            "selfUri": f"/api/v2/routing/{self.kind}/{self.id}",
        }

    def assigned(self, user_id: str, proficiency: float) -> dict[str, Any]:
        """``UserRoutingSkill`` / ``UserRoutingLanguage``: the org's entity on one user."""
        uri = "skillUri" if self.kind == "skills" else "languageUri"
        path = "routingskills" if self.kind == "skills" else "routinglanguages"
        return {
            "id": self.id,
            "name": self.name,
            "proficiency": proficiency,
            "state": "active",
            uri: f"/api/v2/routing/{self.kind}/{self.id}",
            "selfUri": f"/api/v2/users/{user_id}/{path}/{self.id}",
        }


@dataclass
class User:
    id: str
    name: str
    email: str
    username: str
    division_id: str
    state: str = "active"
    version: int = 1
    department: str | None = None
    title: str | None = None
    manager_id: str | None = None
    preferred_name: str | None = None
    employer_info: dict[str, str] = field(default_factory=dict)
    addresses: list[dict[str, Any]] = field(default_factory=list)
    date_modified: float = 0.0
    # Every state the user has been in, with when (``GET /sandbox/users/{id}`` ``stateHistory``):
    # tests assert from it that a user was never active after a deactivation.
    state_history: list[tuple[str, float]] = field(default_factory=list)
    # Deleted through the GDPR API: such a user cannot be restored (genesys-api.md 2.4).
    gdpr_deleted: bool = False

    def sort_key(self) -> tuple[str, str]:
        return (self.name.casefold(), self.id)

    def to_json(self, division: Division) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "division": division.ref(),
            "chat": {"jabberId": f"{self.id}@sandbox.orgspan.com"},
            "email": self.email,
            "primaryContactInfo": [
                {"address": self.email, "mediaType": "EMAIL", "type": "PRIMARY"},
            ],
            "addresses": self.addresses,
            "state": self.state,
            "username": self.username,
            "version": self.version,
            "acdAutoAnswer": False,
            "selfUri": f"/api/v2/users/{self.id}",
        }
        if self.department is not None:
            body["department"] = self.department
        if self.title is not None:
            body["title"] = self.title
        if self.preferred_name is not None:
            body["preferredName"] = self.preferred_name
        if self.manager_id:
            body["manager"] = {"id": self.manager_id, "selfUri": f"/api/v2/users/{self.manager_id}"}
        if self.employer_info:
            body["employerInfo"] = dict(self.employer_info)
        return body


@dataclass
class Queue:
    id: str
    name: str
    division_id: str
    date_created: float

    def to_json(self, division: Division, member_count: int, joined_count: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "division": division.ref(),
            "dateCreated": iso(self.date_created),
            "dateModified": iso(self.date_created),
            "memberCount": member_count,
            "userMemberCount": member_count,
            "joinedMemberCount": joined_count,
            "scoringMethod": "TimestampAndPriority",
            "skillEvaluationMethod": "BEST",
            "selfUri": f"/api/v2/routing/queues/{self.id}",
        }


@dataclass
class Group:
    id: str
    name: str
    description: str | None
    type: str  # official | social
    visibility: str  # public | owners | members
    version: int = 1
    state: str = "active"
    rules_visible: bool = True
    roles_enabled: bool = False
    date_modified: float = 0.0
    member_ids: dict[str, None] = field(default_factory=dict)  # ordered set
    owner_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "dateModified": iso(self.date_modified),
            "memberCount": len(self.member_ids),
            "state": self.state,
            "version": self.version,
            "type": self.type,
            "rulesVisible": self.rules_visible,
            "visibility": self.visibility,
            "rolesEnabled": self.roles_enabled,
            "includeOwners": False,
            "callsEnabled": False,
            "owners": [{"id": o, "selfUri": f"/api/v2/users/{o}"} for o in self.owner_ids],
            "selfUri": f"/api/v2/groups/{self.id}",
        }
        if self.description is not None:
            body["description"] = self.description
        return body


@dataclass
class Segment:
    start: float
    end: float | None
    segment_type: str  # alert | interact | hold | wrapup | ivr ... (AnalyticsConversationSegment)
    queue_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"segmentStart": iso(self.start), "segmentType": self.segment_type}
        if self.end is not None:
            body["segmentEnd"] = iso(self.end)
        if self.queue_id is not None:
            body["queueId"] = self.queue_id
        return body


@dataclass
class Session:
    session_id: str
    media_type: str  # voice | chat | email | message | callback | video ...
    direction: str  # inbound | outbound
    segments: list[Segment]

    def to_json(self) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "mediaType": self.media_type,
            "direction": self.direction,
            "segments": [s.to_json() for s in self.segments],
        }


@dataclass
class Participant:
    participant_id: str
    name: str
    purpose: str  # customer | acd | agent | ...
    user_id: str | None
    sessions: list[Session]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "participantId": self.participant_id,
            "participantName": self.name,
            "purpose": self.purpose,
            "sessions": [s.to_json() for s in self.sessions],
        }
        if self.user_id is not None:
            body["userId"] = self.user_id
        return body


@dataclass
class Conversation:
    id: str
    start: float
    end: float | None  # None while active
    originating_direction: str
    division_ids: list[str]
    participants: list[Participant]

    def user_ids(self) -> set[str]:
        return {p.user_id for p in self.participants if p.user_id is not None}

    def segment_bounds(self) -> tuple[float, float]:
        starts = [g.start for p in self.participants for s in p.sessions for g in s.segments]
        ends = [g.end or g.start for p in self.participants for s in p.sessions for g in s.segments]
        return (min(starts, default=self.start), max(ends, default=self.end or self.start))

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "conversationId": self.id,
            "conversationStart": iso(self.start),
            "originatingDirection": self.originating_direction,
            "divisionIds": list(self.division_ids),
            "participants": [p.to_json() for p in self.participants],
        }
        if self.end is not None:
            body["conversationEnd"] = iso(self.end)
        return body
