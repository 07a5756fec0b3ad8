"""``SdkGateway``: the ``Gateway`` interface (``api.py``) over ``PureCloudPlatformClientV2``.

Every HTTP request goes through :meth:`SdkGateway._request`: token first, then the server's
back-pressure and the client-side rate budget, then one SDK call through the transport
(``sdk.py``), observed, and on failure the retry policy (``retry.py``) within the caller's
deadline. Operations that change a versioned entity add the version loop on top
(:meth:`SdkGateway._versioned`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from scim_bridge.config import Settings
from scim_bridge.genesys import history, mapping
from scim_bridge.genesys.api import Observer
from scim_bridge.genesys.budget import Backpressure, RateBudget, SlidingWindowBudget
from scim_bridge.genesys.errors import (
    ActiveConversation,
    AuthenticationFailed,
    BadRequest,
    Conflict,
    GenesysError,
    NotFound,
    Unavailable,
    Unrestorable,
    VersionConflict,
)
from scim_bridge.genesys.failures import (
    Failure,
    Kind,
    from_api_exception,
    from_transport_error,
    scrub,
)
from scim_bridge.genesys.ids import valid_id
from scim_bridge.genesys.retry import DEFAULT_POLICY, RetryPolicy
from scim_bridge.genesys.sdk import ApiException, SdkClients, Transport, TransportError
from scim_bridge.genesys.session import TokenHolder, parse_token_response, token_request
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

_log = logging.getLogger(__name__)

T = TypeVar("T")

_ID_CHUNK = 100  # ids per GET /users?id=... (page size 100)
_GROUP_MEMBER_CHUNK = 50  # "A maximum of 50 members are allowed per request" (genesys-api.md 7)
_MAX_PAGES = 10_000  # a guard against a server that never says "last page"


@dataclasses.dataclass(frozen=True)
class _Call:
    """One HTTP call as the retry policy sees it."""

    method: str
    endpoint: str  # the path template, as in CallRecord
    replayable: bool = True  # may be re-sent after an ambiguous failure (retry.py)
    authenticated: bool = True  # False only for the token request
    conflict: type[Conflict] = Conflict  # the 409 class when Genesys names no cause

    @property
    def label(self) -> str:
        return f"{self.method} {self.endpoint}"


class _Failed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error.message)
        self.failure = failure


_TOKEN = _Call("POST", "/oauth/token", authenticated=False)
_GET_USER = _Call("GET", "/api/v2/users/{userId}")
_LIST_USERS = _Call("GET", "/api/v2/users")
_SEARCH_USERS = _Call("POST", "/api/v2/users/search")
_CREATE_USER = _Call("POST", "/api/v2/users")
_PATCH_USER = _Call("PATCH", "/api/v2/users/{userId}", conflict=VersionConflict)
_PATCH_STATE = _Call("PATCH", "/api/v2/users/{userId}")  # a bare 409 is resolved by re-reading
_DELETE_USER = _Call("DELETE", "/api/v2/users/{userId}")
_USER_QUEUES = _Call("GET", "/api/v2/users/{userId}/queues")
_PATCH_USER_QUEUES = _Call("PATCH", "/api/v2/users/{userId}/queues")
_LIST_QUEUES = _Call("GET", "/api/v2/routing/queues")
_QUEUE_MEMBERS = _Call("GET", "/api/v2/routing/queues/{queueId}/members")
_DELETE_QUEUE_MEMBER = _Call("DELETE", "/api/v2/routing/queues/{queueId}/members/{memberId}")
_ADD_QUEUE_MEMBERS = _Call("POST", "/api/v2/routing/queues/{queueId}/members")
# ?delete=true: removing again what is gone changes nothing, so a replay is harmless
_REMOVE_QUEUE_MEMBERS = _Call("POST", "/api/v2/routing/queues/{queueId}/members")
_DELETE_TOKENS = _Call("DELETE", "/api/v2/tokens/{userId}")
_DETAILS_QUERY = _Call("POST", "/api/v2/analytics/conversations/details/query")
# A replayed submission may leave a second job running: it only reads, ends and expires.
_SUBMIT_JOB = _Call("POST", "/api/v2/analytics/conversations/details/jobs")
_JOB_STATUS = _Call("GET", "/api/v2/analytics/conversations/details/jobs/{jobId}")
_JOB_RESULTS = _Call("GET", "/api/v2/analytics/conversations/details/jobs/{jobId}/results")
_AVAILABILITY = _Call("GET", "/api/v2/analytics/conversations/details/jobs/availability")
_BY_ID = _Call("GET", "/api/v2/analytics/conversations/details")
_LIST_GROUPS = _Call("GET", "/api/v2/groups")
_SEARCH_GROUPS = _Call("POST", "/api/v2/groups/search")
_GET_GROUP = _Call("GET", "/api/v2/groups/{groupId}")
_CREATE_GROUP = _Call("POST", "/api/v2/groups", replayable=False)
_PUT_GROUP = _Call("PUT", "/api/v2/groups/{groupId}", conflict=VersionConflict)
_DELETE_GROUP = _Call("DELETE", "/api/v2/groups/{groupId}")
_GROUP_MEMBERS = _Call("GET", "/api/v2/groups/{groupId}/members")
_ADD_GROUP_MEMBERS = _Call("POST", "/api/v2/groups/{groupId}/members", conflict=VersionConflict)
_REMOVE_GROUP_MEMBERS = _Call("DELETE", "/api/v2/groups/{groupId}/members")
_SUBJECT = _Call("GET", "/api/v2/authorization/subjects/{subjectId}")
_BULKADD = _Call("POST", "/api/v2/authorization/subjects/{subjectId}/bulkadd")
_USER_SKILLS = _Call("GET", "/api/v2/users/{userId}/routingskills")
_USER_LANGUAGES = _Call("GET", "/api/v2/users/{userId}/routinglanguages")
_SKILLS_BULK = _Call("PATCH", "/api/v2/users/{userId}/routingskills/bulk")
_LANGUAGES_BULK = _Call("PATCH", "/api/v2/users/{userId}/routinglanguages/bulk")
_MOVE_OBJECTS = _Call("POST", "/api/v2/authorization/divisions/{divisionId}/objects/{objectType}")
_HOME_DIVISION = _Call("GET", "/api/v2/authorization/divisions/home")
# conversationSummary too: the snapshot's read also answers "any active conversation?" (2.1)
_FOOTPRINT_EXPAND = ["skills", "languages", "groups", "conversationSummary"]
_BULK_CHUNK = 50  # skills and languages per bulk PATCH (PYDOCS "Max 50"; TF chunks by 50)
_GRANT_CHUNK = 50  # grants per bulkadd: no documented bound, a conservative one
# [{id, joined}] pairs per PATCH /users/{id}/queues: no documented bound; as for bulk members.
_JOIN_CHUNK = 100
_MEMBER_PAGE = 100  # GET /routing/queues/{q}/members: "Max value is 100" (PYDOCS)
# Below this many users, each one's two listings cost no more than listing the org's queues.
_BY_QUEUE_FROM = 10
_MEMBER_CHUNK = 100  # "Bulk add or delete up to 100 queue members" (genesys-api.md 3; TF: 100)


def _check_ids(*ids: str) -> None:
    """Ids go into URL paths: refuse what cannot be one (genesys/ids.py) without a call."""
    for value in ids:
        if not valid_id(value):
            raise NotFound("not a Genesys id", status=404)


class SdkGateway:
    """The bridge's only way to Genesys Cloud. Thread-safe; one per process (per OAuth client)."""

    def __init__(
        self,
        api_host: str,
        client_id: str,
        client_secret: str,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        budget: RateBudget | None = None,
        default_deadline_s: float = 60.0,
        retry: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._default_deadline_s = default_deadline_s
        self._retry = retry
        self._budget: RateBudget = budget if budget is not None else SlidingWindowBudget(300)
        self._pressure = Backpressure()
        self._tokens = TokenHolder()
        self._observers: list[Observer] = []
        self._observers_lock = threading.Lock()
        self._sdk = SdkClients.create(
            api_host,
            Transport(connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s),
        )
        self._login_url = self._sdk.login_url()

    def close(self) -> None:
        """Release pooled connections. The gateway is not used afterwards."""
        self._sdk.transport.close()

    def __repr__(self) -> str:
        return f"SdkGateway(api_host={self._sdk.api_client.host!r})"

    # ================================================================= session
    def ensure_token(self, *, deadline: float | None = None) -> None:
        if self._tokens.current() is not None:
            return
        deadline = self._deadline(deadline)
        if not self._tokens.renewal.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise Unavailable("timed out waiting for another thread's token request", status=0)
        try:
            if self._tokens.current() is not None:
                return  # another thread renewed it while this one waited
            headers, form = token_request(self._client_id, self._client_secret)
            requested_at = time.monotonic()
            try:
                body = self._request(
                    _TOKEN,
                    lambda: self._sdk.post_form(self._login_url, headers, form),
                    deadline,
                )
            except BadRequest as e:  # 400 invalid_client / invalid_grant
                raise AuthenticationFailed(e.message, status=e.status, code=e.code) from e
            token = parse_token_response(body, now=requested_at)
            self._tokens.install(token)
            self._sdk.set_access_token(token.value)
        finally:
            self._tokens.renewal.release()

    def add_observer(self, observer: Observer) -> None:
        with self._observers_lock:
            self._observers = [*self._observers, observer]

    # ================================================================= users
    def get_user(
        self,
        user_id: str,
        *,
        include_deleted: bool = False,
        expect_deleted: bool = False,
        deadline: float | None = None,
    ) -> GenesysUser:
        _check_ids(user_id)
        deadline = self._deadline(deadline)
        # A deleted user answers only ?state=deleted, any other user only the default read
        # (2.1): ask first where the caller expects the user, the other way only after a 404.
        states: tuple[str | None, ...] = (None,)
        if expect_deleted:
            states = ("deleted", None)
        elif include_deleted:
            states = (None, "deleted")
        for state in states[:-1]:
            try:
                return mapping.user(self._read_user(user_id, state, deadline))
            except NotFound:
                continue
        return mapping.user(self._read_user(user_id, states[-1], deadline))

    def _read_user(self, user_id: str, state: str | None, deadline: float) -> Any:
        """``UsersApi.get_user`` as JSON (``sdk.call_json``: no model deserialisation)."""
        query = {} if state is None else {"state": state}
        return self._request(
            _GET_USER,
            lambda: self._sdk.call_json(
                "GET", _GET_USER.endpoint, path_params={"userId": user_id}, query=query
            ),
            deadline,
        )

    def get_users(
        self, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, GenesysUser]:
        deadline = self._deadline(deadline)
        found: dict[str, GenesysUser] = {}
        unique = [uid for uid in dict.fromkeys(user_ids) if valid_id(uid)]
        for i in range(0, len(unique), _ID_CHUNK):
            query = {"id": unique[i : i + _ID_CHUNK], "state": "any", "pageSize": _ID_CHUNK}
            for entity in self._pages(_LIST_USERS, deadline, self._users_json, **query):
                user = mapping.user(entity)
                found[user.id] = user
        return {uid: found[uid] for uid in unique if uid in found}

    def list_users(
        self,
        *,
        page_number: int = 1,
        page_size: int = 100,
        state: str = "any",
        deadline: float | None = None,
    ) -> Page[GenesysUser]:
        deadline = self._deadline(deadline)
        listing = self._request(
            _LIST_USERS,
            lambda: self._users_json(
                pageSize=page_size, page_number=page_number, state=state, sortOrder="ascending"
            ),
            deadline,
        )
        items = mapping.users(mapping.listing_items(listing))
        return Page(items, mapping.listing_total(listing, len(items)), page_number, page_size)

    def search_users(
        self,
        criteria: Sequence[Criterion],
        *,
        page_number: int = 1,
        page_size: int = 100,
        deadline: float | None = None,
    ) -> Page[GenesysUser]:
        deadline = self._deadline(deadline)
        query = [mapping.criterion_body(c) for c in criteria]
        if not mapping.mentions_field(criteria, "state"):
            # Whether the default search includes inactive users is UNCONFIRMED (genesys-api.md
            # 2.6); naming both states makes the answer the same under either reading.
            query.append({"type": "EXACT", "fields": ["state"], "values": ["active", "inactive"]})
        body = {
            "query": query,
            "pageSize": page_size,
            "pageNumber": page_number,
            "sortOrder": "ASC",
            "sortBy": "name",
        }
        response = self._request(
            _SEARCH_USERS,
            lambda: self._sdk.call_json("POST", _SEARCH_USERS.endpoint, body=body),
            deadline,
        )
        items = mapping.users(mapping.listing_items(response, "results"))
        return Page(items, mapping.listing_total(response, len(items)), page_number, page_size)

    def _users_json(self, *, page_number: int, **query: Any) -> Any:
        """``UsersApi.get_users`` as JSON (``sdk.call_json``); ``query`` in the API's names."""
        return self._sdk.call_json(
            "GET", _LIST_USERS.endpoint, query={**query, "pageNumber": page_number}
        )

    def create_user(
        self, fields: UserFields, *, state: UserState = "active", deadline: float | None = None
    ) -> GenesysUser:
        if not fields.name or not fields.email:
            raise BadRequest("create_user needs a name and an email")
        deadline = self._deadline(deadline)
        body = mapping.create_user_body(fields, state)
        created = mapping.user(
            self._request(_CREATE_USER, lambda: self._sdk.users.post_users(body), deadline)
        )
        rest = mapping.post_create_fields(fields)
        if not mapping.has_update(rest):
            return created
        try:  # with the version the POST answered: no read of its own
            return self.update_user(created.id, rest, version=created.version, deadline=deadline)
        except VersionConflict:
            return self.update_user(created.id, rest, deadline=deadline)

    def update_user(
        self,
        user_id: str,
        fields: UserFields,
        *,
        version: int | None = None,
        deadline: float | None = None,
    ) -> GenesysUser:
        _check_ids(user_id)
        deadline = self._deadline(deadline)

        def patch(current: int) -> GenesysUser:
            body = mapping.update_user_body(fields, current)
            return mapping.user(
                self._request(
                    _PATCH_USER, lambda: self._sdk.users.patch_user(user_id, body), deadline
                )
            )

        if version is not None:
            return patch(version)  # conditional (SCIM If-Match): a stale version is the answer
        return self._versioned(
            lambda: self.get_user(user_id, deadline=deadline).version, patch, deadline
        )

    def set_state(
        self,
        user_id: str,
        state: UserState,
        *,
        current: GenesysUser | None = None,
        deadline: float | None = None,
    ) -> GenesysUser:
        _check_ids(user_id)
        deadline = self._deadline(deadline)
        if state == "deleted":
            self.delete_user(user_id, deadline=deadline)
            return self.get_user(user_id, expect_deleted=True, deadline=deadline)
        # The caller's own fresh read stands in for the first one: a stale version costs a 409,
        # which re-reads as any version race does.
        known = current if current is not None and current.id == user_id else None
        last: GenesysError | None = None
        for retry in range(self._retry.version_attempts):
            if retry and last is not None:
                self._pause(self._retry.version_backoff(retry), deadline, last)
            last = None
            if known is not None:
                current, known = known, None
            else:
                current = self.get_user(user_id, include_deleted=True, deadline=deadline)
            if current.state == state:
                return current  # idempotent: a resumed step does no harm twice
            result, last = self._patch_state(user_id, state, current, deadline)
            if result is None:
                continue
            if result.state != state and current.state == "deleted" and result.state == "active":
                # An undelete comes back active whatever state was asked (genesys-api.md 2.4):
                # deactivate at once, with the version the restore answered.
                known = result
                continue
            return result
        if last is None:
            raise Unavailable(f"user {user_id} did not reach state {state}", status=0)
        raise last

    def _patch_state(
        self, user_id: str, state: UserState, current: GenesysUser, deadline: float
    ) -> tuple[GenesysUser | None, GenesysError | None]:
        """One PATCH of the state: (the user it answered, None), or (None, the race to go round
        again for)."""
        # A state change must be alone in its PATCH (genesys-api.md 2.3); restoring a
        # deleted user uses the version read with ?state=deleted (as TF does).
        body = {"state": state, "version": current.version}
        try:
            model = self._request(
                _PATCH_STATE,
                functools.partial(self._sdk.users.patch_user, user_id, body),
                deadline,
            )
        except VersionConflict as e:
            return None, e
        except ActiveConversation:
            raise
        except Conflict as e:
            # A 409 naming neither cause: if the version moved meanwhile it was a race,
            # so go round again; otherwise it is Genesys's answer.
            again = self.get_user(user_id, include_deleted=True, deadline=deadline)
            if again.version == current.version and again.state != state:
                raise
            return None, e
        return mapping.user(model), None

    def revoke_sessions(self, user_id: str, *, deadline: float | None = None) -> bool:
        deadline = self._deadline(deadline)
        try:
            self._request(
                _DELETE_TOKENS, functools.partial(self._sdk.tokens.delete_token, user_id), deadline
            )
        except NotFound:
            return False
        return True

    def delete_user(self, user_id: str, *, deadline: float | None = None) -> None:
        _check_ids(user_id)
        deadline = self._deadline(deadline)
        last: GenesysError | None = None
        for retry in range(self._retry.version_attempts):
            if retry:
                self._pause(self._retry.version_backoff(retry), deadline, last)
            try:
                self._request(_DELETE_USER, lambda: self._sdk.users.delete_user(user_id), deadline)
            except NotFound:
                # Already deleted is success; a user that never existed is not.
                self.get_user(user_id, expect_deleted=True, deadline=deadline)
                return
            except VersionConflict as e:
                # "Directory occasionally returns version errors on deletes" (TF, genesys-api.md 2.4)
                last = e
                continue
            return
        assert last is not None
        raise last

    # ================================================================= routing
    def user_queues(
        self, user_id: str, *, deadline: float | None = None
    ) -> tuple[QueueMembership, ...]:
        _check_ids(user_id)
        deadline = self._deadline(deadline)
        memberships: dict[str, QueueMembership] = {}
        # joined defaults to true (genesys-api.md 3): both readings are needed for every queue.
        for joined in (True, False):
            for model in self._pages(
                _USER_QUEUES,
                deadline,
                self._sdk.users.get_user_queues,
                user_id,
                page_size=100,
                joined=joined,
            ):
                membership = mapping.queue_membership(model, joined_default=joined)
                if membership is not None and membership.queue_id not in memberships:
                    memberships[membership.queue_id] = membership
        return tuple(memberships.values())

    def queue_memberships(
        self, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, tuple[QueueMembership, ...]]:
        _check_ids(*user_ids)
        deadline = self._deadline(deadline)
        unique = list(dict.fromkeys(user_ids))
        found = (
            self._memberships_by_queue(unique, deadline) if len(unique) >= _BY_QUEUE_FROM else None
        )
        if found is None:
            return {uid: self.user_queues(uid, deadline=deadline) for uid in unique}
        return found

    def _memberships_by_queue(
        self, user_ids: list[str], deadline: float
    ) -> dict[str, tuple[QueueMembership, ...]] | None:
        """Through the org's queues and their members; None when that would cost more calls than
        each user's two listings (known once the queues, with their ``memberCount``, are read)."""
        queues = self._pages(
            _LIST_QUEUES, deadline, self._sdk.routing.get_routing_queues, page_size=_MEMBER_PAGE
        )
        pages = {
            q.id: -(-(q.member_count if isinstance(q.member_count, int) else 1) // _MEMBER_PAGE)
            for q in queues
            if getattr(q, "id", None)
        }
        if sum(pages.values()) >= 2 * len(user_ids):
            return None
        wanted = set(user_ids)
        found: dict[str, dict[str, QueueMembership]] = {uid: {} for uid in user_ids}
        for queue in queues:
            if not pages.get(queue.id):
                continue
            for member in self._pages(
                _QUEUE_MEMBERS,
                deadline,
                self._sdk.routing.get_routing_queue_members,
                queue.id,
                page_size=_MEMBER_PAGE,
            ):
                uid = getattr(member, "id", None)
                if uid in wanted and isinstance(member.joined, bool):
                    found[uid][queue.id] = QueueMembership(
                        queue.id, queue.name or "", member.joined
                    )
        return {uid: tuple(by.values()) for uid, by in found.items()}

    def remove_queue_member(
        self, queue_id: str, user_id: str, *, deadline: float | None = None
    ) -> None:
        _check_ids(queue_id, user_id)
        deadline = self._deadline(deadline)
        try:
            self._request(
                _DELETE_QUEUE_MEMBER,
                lambda: self._sdk.routing.delete_routing_queue_member(queue_id, user_id),
                deadline,
            )
        except NotFound:
            return  # already gone

    def remove_queue_members(
        self, queue_id: str, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, GenesysError]:
        _check_ids(queue_id, *user_ids)
        deadline = self._deadline(deadline)
        refused: dict[str, GenesysError] = {}
        unique = list(dict.fromkeys(user_ids))
        for i in range(0, len(unique), _MEMBER_CHUNK):
            chunk = unique[i : i + _MEMBER_CHUNK]
            post = functools.partial(
                self._sdk.routing.post_routing_queue_members,
                queue_id,
                [{"id": user_id} for user_id in chunk],
                delete=True,
            )
            try:
                self._request(_REMOVE_QUEUE_MEMBERS, post, deadline)
            except NotFound:
                return refused  # the queue is gone, and every membership in it
            except BadRequest as error:
                if len(chunk) == 1:
                    refused[chunk[0]] = error
                    continue
                # One member Genesys will not remove this way (a group's, UNCONFIRMED) refuses
                # the whole request: each one alone tells which.
                refused.update(self._remove_each(queue_id, chunk, deadline))
        return refused

    def _remove_each(
        self, queue_id: str, user_ids: Sequence[str], deadline: float
    ) -> dict[str, GenesysError]:
        refused: dict[str, GenesysError] = {}
        for user_id in user_ids:
            try:
                self.remove_queue_member(queue_id, user_id, deadline=deadline)
            except BadRequest as error:
                refused[user_id] = error
        return refused

    def add_queue_member(
        self, queue_id: str, user_id: str, *, deadline: float | None = None
    ) -> None:
        _check_ids(queue_id, user_id)
        deadline = self._deadline(deadline)
        self._request(
            _ADD_QUEUE_MEMBERS,
            lambda: self._sdk.routing.post_routing_queue_members(queue_id, [{"id": user_id}]),
            deadline,
        )

    def set_queues_joined(
        self, user_id: str, joined: Mapping[str, bool], *, deadline: float | None = None
    ) -> None:
        _check_ids(user_id, *joined)
        deadline = self._deadline(deadline)
        pairs = [{"id": queue_id, "joined": flag} for queue_id, flag in joined.items()]
        for i in range(0, len(pairs), _JOIN_CHUNK):
            body = pairs[i : i + _JOIN_CHUNK]
            self._request(
                _PATCH_USER_QUEUES,
                functools.partial(self._sdk.users.patch_user_queues, user_id, body),
                deadline,
            )

    def conversation_status(
        self, user_id: str, *, deadline: float | None = None
    ) -> ConversationStatus:
        _check_ids(user_id)
        deadline = self._deadline(deadline)
        model = self._request(
            _GET_USER,
            lambda: self._sdk.users.get_user(user_id, expand=["conversationSummary"]),
            deadline,
        )
        counts = mapping.conversation_counts(model)
        if counts is None:
            # Expands are "best effort" (PYDOCS get_user): no summary is not "no conversations",
            # and not an outage to wait on either: the caller decides from what is known.
            return ConversationStatus(
                user_id=user_id, active=0, acw=0, user=mapping.user(model), known=False
            )
        return ConversationStatus(
            user_id=user_id, active=counts[0], acw=counts[1], user=mapping.user(model)
        )

    # ================================================================= footprint (issue 12)
    def user_footprint(
        self, user_id: str, *, grants: bool = True, deadline: float | None = None
    ) -> Footprint:
        deadline = self._deadline(deadline)
        model = self._request(
            _GET_USER,
            lambda: self._sdk.users.get_user(user_id, expand=list(_FOOTPRINT_EXPAND)),
            deadline,
        )
        return self._footprint(model, deadline, grants=grants)

    def footprints(
        self, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, Footprint]:
        deadline = self._deadline(deadline)
        found: dict[str, Footprint] = {}
        unique = list(dict.fromkeys(user_ids))
        for i in range(0, len(unique), _ID_CHUNK):
            for model in self._pages(
                _LIST_USERS,
                deadline,
                self._sdk.users.get_users,
                id=unique[i : i + _ID_CHUNK],
                state="any",
                page_size=_ID_CHUNK,
                expand=list(_FOOTPRINT_EXPAND),
            ):
                if mapping.user(model).state != "deleted":
                    footprint = self._footprint(model, deadline)
                    found[footprint.user.id] = footprint
        return {uid: found[uid] for uid in unique if uid in found}

    def _footprint(self, model: Any, deadline: float, *, grants: bool = True) -> Footprint:
        """A user read with the footprint's expands, completed: an expand Genesys left out (best
        effort, PYDOCS get_user) read on its own, and the grants (unless ``grants`` is false)."""
        user = mapping.user(model)
        skills = mapping.expanded(model, "skills")
        if skills is None:
            skills = self._pages(
                _USER_SKILLS,
                deadline,
                self._sdk.users.get_user_routingskills,
                user.id,
                page_size=100,
            )
        languages = mapping.expanded(model, "languages")
        if languages is None:
            languages = self._pages(
                _USER_LANGUAGES,
                deadline,
                self._sdk.users.get_user_routinglanguages,
                user.id,
                page_size=100,
            )
        groups = mapping.expanded(model, "groups")
        counts = mapping.conversation_counts(model)
        footprint = Footprint(
            user=user,
            division_id=user.division_id,
            grants=(),
            group_grants=(),
            skills=mapping.proficiencies(skills),
            languages=mapping.proficiencies(languages),
            group_ids=None if groups is None else mapping.user_ids(groups),
            conversations=None
            if counts is None
            else ConversationStatus(user.id, active=counts[0], acw=counts[1], user=user),
        )
        return (
            footprint.with_grants(self.role_grants(user.id, deadline=deadline))
            if grants
            else footprint
        )

    def role_grants(self, user_id: str, *, deadline: float | None = None) -> tuple[RoleGrant, ...]:
        deadline = self._deadline(deadline)
        subject = self._request(
            _SUBJECT,
            lambda: self._sdk.authorization.get_authorization_subject(
                user_id, include_duplicates=True
            ),
            deadline,
        )
        return mapping.grants(subject)

    def grant_roles(
        self, user_id: str, grants: Sequence[RoleGrant], *, deadline: float | None = None
    ) -> None:
        deadline = self._deadline(deadline)
        pairs = mapping.grant_pairs(grants)
        for i in range(0, len(pairs), _GRANT_CHUNK):
            body = {"grants": pairs[i : i + _GRANT_CHUNK]}
            self._request(
                _BULKADD,
                functools.partial(
                    self._sdk.authorization.post_authorization_subject_bulkadd, user_id, body
                ),
                deadline,
            )

    def assign_skills(
        self, user_id: str, skills: Sequence[Proficiency], *, deadline: float | None = None
    ) -> None:
        self._assign(
            _SKILLS_BULK, self._sdk.users.patch_user_routingskills_bulk, user_id, skills, deadline
        )

    def assign_languages(
        self, user_id: str, languages: Sequence[Proficiency], *, deadline: float | None = None
    ) -> None:
        self._assign(
            _LANGUAGES_BULK,
            self._sdk.users.patch_user_routinglanguages_bulk,
            user_id,
            languages,
            deadline,
        )

    def _assign(
        self,
        call: _Call,
        method: Callable[..., Any],
        user_id: str,
        chosen: Sequence[Proficiency],
        deadline: float | None,
    ) -> None:
        deadline = self._deadline(deadline)
        body = mapping.proficiency_body(chosen)
        for i in range(0, len(body), _BULK_CHUNK):
            self._request(
                call, functools.partial(method, user_id, body[i : i + _BULK_CHUNK]), deadline
            )

    def move_to_division(
        self, user_id: str, division_id: str, *, deadline: float | None = None
    ) -> None:
        deadline = self._deadline(deadline)
        self._request(
            _MOVE_OBJECTS,
            functools.partial(
                self._sdk.authorization.post_authorization_division_object,
                division_id,
                "USER",
                [user_id],
            ),
            deadline,
        )

    def home_division(self, *, deadline: float | None = None) -> Division:
        deadline = self._deadline(deadline)
        return mapping.division(
            self._request(
                _HOME_DIVISION, self._sdk.authorization.get_authorization_divisions_home, deadline
            )
        )

    def restore_user(self, user_id: str, *, deadline: float | None = None) -> GenesysUser:
        deadline = self._deadline(deadline)
        current = self.get_user(user_id, expect_deleted=True, deadline=deadline)
        if current.state != "deleted":
            return current
        try:
            return self.set_state(user_id, "active", current=current, deadline=deadline)
        except BadRequest as e:
            # The documented refusal is the GDPR delete (2.4); its status and code are
            # UNCONFIRMED, so any 4xx answer to the restore PATCH is this refusal.
            raise Unrestorable(
                e.message, status=e.status, code=e.code, correlation_id=e.correlation_id
            ) from e

    # ================================================================= analytics
    def conversation_history(
        self, query: HistoryQuery, *, deadline: float | None = None
    ) -> History:
        deadline = self._deadline(deadline)
        found: dict[str, set[str]] = {uid: set() for uid in query.user_ids}
        by_interval: dict[str, dict[str, set[str]]] = {uid: {} for uid in query.user_ids}
        intervals = history.intervals(query.since, query.until)
        queries = 0
        for batch in history.batches(query.user_ids):
            expected = _expected_for(query, batch, intervals)
            for interval in intervals:
                if expected is not None and not expected.get(interval):
                    continue  # nothing was found here before: nothing to confirm here
                queries += self._history_interval(
                    interval,
                    batch,
                    settled=query.settled,
                    expected=None if expected is None else expected[interval],
                    found=found,
                    by_interval=by_interval,
                    deadline=deadline,
                )
        return History(
            query=query,
            conversations={uid: frozenset(ids) for uid, ids in found.items()},
            queries_made=queries,
            by_interval={
                uid: {i: frozenset(ids) for i, ids in per.items()}
                for uid, per in by_interval.items()
            },
        )

    def _history_interval(
        self,
        interval: str,
        batch: tuple[str, ...],
        *,
        settled: bool = False,
        expected: frozenset[tuple[str, str]] | None,
        found: dict[str, set[str]],
        by_interval: dict[str, dict[str, set[str]]],
        deadline: float,
    ) -> int:
        """Page one interval for one batch of users (history.py: when a page is the last; a
        ``settled`` batch's live interval as a closed one); with ``expected`` ((userId,
        conversationId) pairs), only until each of those conversations has come back
        attributed to that user. The queries made."""
        wanted = set(batch)
        closed = settled or history.is_closed(interval, datetime.now(UTC))
        seen: set[str] = set()
        attributed: set[tuple[str, str]] = set()
        hits: int | None = None
        for page in range(1, _MAX_PAGES + 1):
            body = history.query_body(interval, batch, page)
            response = self._request(
                _DETAILS_QUERY,
                functools.partial(
                    self._sdk.analytics.post_analytics_conversations_details_query, body
                ),
                deadline,
            )
            rows, total_hits = mapping.details_page_shape(response)
            if total_hits is not None:
                hits = total_hits if hits is None else max(hits, total_hits)
            for conversation_id, participants in mapping.conversation_participants(response):
                seen.add(conversation_id)
                for uid in participants & wanted:
                    attributed.add((uid, conversation_id))
                    found[uid].add(conversation_id)
                    by_interval[uid].setdefault(interval, set()).add(conversation_id)
            if expected is not None:
                if expected <= attributed:
                    return page  # every id found before is back: the proof is complete
                if rows == 0:
                    return page
                continue  # an id is missing: read to the documented end before saying so
            if history.last_page(closed=closed, rows=rows, seen=len(seen), total_hits=hits):
                return page
        return _MAX_PAGES

    def submit_history_job(
        self,
        user_ids: Sequence[str],
        since: datetime,
        until: datetime,
        *,
        deadline: float | None = None,
    ) -> str:
        deadline = self._deadline(deadline)
        body = history.job_body(since, until, user_ids)
        response = self._request(
            _SUBMIT_JOB,
            functools.partial(self._sdk.analytics.post_analytics_conversations_details_jobs, body),
            deadline,
        )
        job_id = mapping.job_id(response)
        if not job_id:
            raise Unavailable(f"{_SUBMIT_JOB.label}: the answer carried no jobId", status=0)
        return job_id

    def history_job(self, job_id: str, *, deadline: float | None = None) -> HistoryJob:
        _check_ids(job_id)
        deadline = self._deadline(deadline)
        model = self._request(
            _JOB_STATUS,
            functools.partial(self._sdk.analytics.get_analytics_conversations_details_job, job_id),
            deadline,
        )
        return mapping.history_job(model, job_id)

    def history_job_results(
        self, job_id: str, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> HistoryJobResults:
        _check_ids(job_id)
        deadline = self._deadline(deadline)
        wanted = set(user_ids)
        found: dict[str, set[str]] = {uid: set() for uid in dict.fromkeys(user_ids)}
        availability: datetime | None = None
        cursor: str | None = None
        read = self._sdk.analytics.get_analytics_conversations_details_job_results
        pages = 0
        while pages < _MAX_PAGES:
            pages += 1
            kwargs: dict[str, Any] = {"page_size": history.JOB_RESULTS_PAGE_SIZE}
            if cursor is not None:
                kwargs["cursor"] = cursor
            response = self._request(
                _JOB_RESULTS, functools.partial(read, job_id, **kwargs), deadline
            )
            for conversation_id, participants in mapping.conversation_participants(response):
                for uid in participants & wanted:
                    found[uid].add(conversation_id)
            cursor, reached = mapping.job_page(response)
            if reached is not None:
                availability = reached if availability is None else min(availability, reached)
            if cursor is None:  # "Iterate until there is no cursor" (genesys-api.md 4.3)
                break
        else:
            raise Unavailable(f"{_JOB_RESULTS.label}: no last page after {_MAX_PAGES}", status=0)
        return HistoryJobResults(
            job_id=job_id,
            conversations={uid: frozenset(ids) for uid, ids in found.items()},
            data_availability=availability,
            pages_read=pages,
        )

    def data_availability(self, *, deadline: float | None = None) -> datetime:
        deadline = self._deadline(deadline)
        model = self._request(
            _AVAILABILITY,
            self._sdk.analytics.get_analytics_conversations_details_jobs_availability,
            deadline,
        )
        reached = mapping.data_availability(model)
        if reached is None:
            raise Unavailable(f"{_AVAILABILITY.label}: no dataAvailabilityDate", status=0)
        return reached

    def conversations_by_id(
        self,
        conversation_ids: Sequence[str],
        user_ids: Sequence[str],
        *,
        deadline: float | None = None,
    ) -> ConversationsById:
        deadline = self._deadline(deadline)
        wanted = set(user_ids)
        found: dict[str, set[str]] = {uid: set() for uid in dict.fromkeys(user_ids)}
        read = self._sdk.analytics.get_analytics_conversations_details
        calls = 0
        for chunk in history.id_batches(conversation_ids):
            asked = set(chunk)
            response = self._request(_BY_ID, functools.partial(read, id=list(chunk)), deadline)
            calls += 1
            for conversation_id, participants in mapping.conversation_participants(response):
                if conversation_id not in asked:
                    continue  # not what was asked for: no proof of anything
                for uid in participants & wanted:
                    found[uid].add(conversation_id)
        return ConversationsById(
            conversations={uid: frozenset(ids) for uid, ids in found.items()}, calls=calls
        )

    # ================================================================= groups
    def list_groups(
        self, *, page_number: int = 1, page_size: int = 100, deadline: float | None = None
    ) -> Page[Group]:
        deadline = self._deadline(deadline)
        listing = self._request(
            _LIST_GROUPS,
            lambda: self._sdk.groups.get_groups(
                page_size=page_size, page_number=page_number, sort_order="ascending"
            ),
            deadline,
        )
        items = mapping.groups(mapping.listing_items(listing))
        return Page(items, mapping.listing_total(listing, len(items)), page_number, page_size)

    def search_groups(
        self,
        criteria: Sequence[Criterion],
        *,
        page_number: int = 1,
        page_size: int = 100,
        deadline: float | None = None,
    ) -> Page[Group]:
        deadline = self._deadline(deadline)
        body = {
            "query": [mapping.criterion_body(c) for c in criteria],
            "pageSize": page_size,
            "pageNumber": page_number,
            "sortOrder": "ASC",
            "sortBy": "name",
        }
        response = self._request(
            _SEARCH_GROUPS, lambda: self._sdk.groups.post_groups_search(body), deadline
        )
        items = mapping.groups(mapping.listing_items(response, "results"))
        return Page(items, mapping.listing_total(response, len(items)), page_number, page_size)

    def get_group(self, group_id: str, *, deadline: float | None = None) -> Group:
        _check_ids(group_id)
        deadline = self._deadline(deadline)
        return mapping.group(
            self._request(_GET_GROUP, lambda: self._sdk.groups.get_group(group_id), deadline)
        )

    def create_group(
        self, name: str, *, description: str | None = None, deadline: float | None = None
    ) -> Group:
        deadline = self._deadline(deadline)
        body: dict[str, Any] = {"name": name, "type": "official", "visibility": "public"}
        if description is not None:
            body["description"] = description
        return mapping.group(
            self._request(_CREATE_GROUP, lambda: self._sdk.groups.post_groups(body), deadline)
        )

    def update_group(
        self,
        group_id: str,
        *,
        name: str,
        description: str | None = None,
        version: int | None = None,
        deadline: float | None = None,
    ) -> Group:
        _check_ids(group_id)
        deadline = self._deadline(deadline)

        def put(current: int) -> Group:
            body: dict[str, Any] = {"name": name, "version": current}
            if description is not None:
                body["description"] = description
            return mapping.group(
                self._request(
                    _PUT_GROUP, lambda: self._sdk.groups.put_group(group_id, body=body), deadline
                )
            )

        if version is not None:
            return put(version)
        return self._versioned(
            lambda: self.get_group(group_id, deadline=deadline).version, put, deadline
        )

    def delete_group(self, group_id: str, *, deadline: float | None = None) -> None:
        _check_ids(group_id)
        deadline = self._deadline(deadline)
        self._request(_DELETE_GROUP, lambda: self._sdk.groups.delete_group(group_id), deadline)

    def group_member_ids(self, group_id: str, *, deadline: float | None = None) -> tuple[str, ...]:
        _check_ids(group_id)
        deadline = self._deadline(deadline)
        members = self._pages(
            _GROUP_MEMBERS,
            deadline,
            self._sdk.groups.get_group_members,
            group_id,
            page_size=100,
        )
        return tuple(dict.fromkeys(mapping.user_ids(members)))

    def add_group_members(
        self,
        group_id: str,
        user_ids: Sequence[str],
        *,
        version: int | None = None,
        deadline: float | None = None,
    ) -> None:
        _check_ids(group_id)
        _check_ids(*user_ids)
        deadline = self._deadline(deadline)
        unique = list(dict.fromkeys(user_ids))
        given = [version] if version is not None else []

        def read_version() -> int:
            # The caller's version serves the first POST; after it (or a 409) the group is read.
            return given.pop() if given else self.get_group(group_id, deadline=deadline).version

        for i in range(0, len(unique), _GROUP_MEMBER_CHUNK):
            chunk = unique[i : i + _GROUP_MEMBER_CHUNK]

            def post(current: int, chunk: list[str] = chunk) -> None:
                body = {"memberIds": chunk, "version": current}
                self._request(
                    _ADD_GROUP_MEMBERS,
                    lambda: self._sdk.groups.post_group_members(group_id, body),
                    deadline,
                )

            self._versioned(read_version, post, deadline)

    def remove_group_members(
        self, group_id: str, user_ids: Sequence[str], *, deadline: float | None = None
    ) -> None:
        _check_ids(group_id)
        _check_ids(*user_ids)
        deadline = self._deadline(deadline)
        unique = list(dict.fromkeys(user_ids))
        for i in range(0, len(unique), _GROUP_MEMBER_CHUNK):
            ids = ",".join(unique[i : i + _GROUP_MEMBER_CHUNK])
            self._request(
                _REMOVE_GROUP_MEMBERS,
                functools.partial(self._sdk.groups.delete_group_members, group_id, ids),
                deadline,
            )

    # ================================================================= machinery
    def _deadline(self, deadline: float | None) -> float:
        return time.monotonic() + self._default_deadline_s if deadline is None else deadline

    def _pause(self, seconds: float, deadline: float, error: GenesysError | None) -> None:
        if time.monotonic() + seconds > deadline:
            if error is not None:
                raise error
            raise Unavailable("deadline reached", status=0)
        time.sleep(seconds)

    def _versioned(
        self, read_version: Callable[[], int], write: Callable[[int], T], deadline: float
    ) -> T:
        """Read the current version, write with it; on a stale version read again (bounded)."""
        last: VersionConflict | None = None
        for retry in range(self._retry.version_attempts):
            if retry:
                self._pause(self._retry.version_backoff(retry), deadline, last)
            try:
                return write(read_version())
            except VersionConflict as e:
                last = e
        assert last is not None
        raise last

    def _pages(
        self,
        call: _Call,
        deadline: float,
        method: Callable[..., Any],
        *args: object,
        **kwargs: object,
    ) -> list[Any]:
        """Every entity of a paged listing (``entities``, ``pageCount``): ``method(*args,
        page_number=n, **kwargs)`` for n = 1, 2, ... until the last page."""
        items: list[Any] = []
        for page in range(1, _MAX_PAGES + 1):
            listing = self._request(
                call, functools.partial(method, *args, page_number=page, **kwargs), deadline
            )
            entities = mapping.listing_items(listing)
            items.extend(entities)
            page_count = mapping.listing_page_count(listing)
            if not entities or (page_count is not None and page >= page_count):
                break
        return items

    def _request(self, call: _Call, fn: Callable[[], T], deadline: float) -> T:
        """One SDK call under the retry policy (retry.py), within ``deadline``."""
        retries = 0
        renewed = False
        while True:
            if call.authenticated:
                self.ensure_token(deadline=deadline)
                self._pressure.wait(deadline)
                self._budget.acquire(deadline)
            token = self._tokens.value()
            try:
                return self._attempt(call, fn, deadline)
            except _Failed as failed:
                failure = failed.failure
            kind = failure.kind
            if kind is Kind.EXPIRED and call.authenticated and not renewed:
                # Genesys never refreshes a client-credentials token for us (genesys-api.md
                # 1.3): fetch a new one once, then try the call once more.
                self._tokens.invalidate(token)
                renewed = True
                continue
            retryable = kind in (Kind.THROTTLED, Kind.NOT_SENT) or (
                kind is Kind.AMBIGUOUS and call.replayable
            )
            retries += 1
            if not retryable or retries >= self._retry.max_attempts:
                raise failure.error from failure.cause
            if kind is Kind.THROTTLED and failure.retry_after_s is not None:
                delay = failure.retry_after_s
                self._pressure.hold(min(delay, self._retry.max_retry_after_s))
            else:
                delay = self._retry.backoff(retries)
            if delay > self._retry.max_retry_after_s or time.monotonic() + delay > deadline:
                raise failure.error from failure.cause
            _log.info(
                "genesys call retried",
                extra={
                    "endpoint": call.label,
                    "status": failure.status,
                    "retry_in_s": round(delay, 3),
                    "retry": retries,
                },
            )
            time.sleep(delay)

    def _attempt(self, call: _Call, fn: Callable[[], T], deadline: float) -> T:
        transport = self._sdk.transport
        transport.reset_exchange()
        transport.set_deadline(deadline)
        started = time.monotonic()
        try:
            result = fn()
        except ApiException as e:
            failure = from_api_exception(e, operation=call.label, conflict=call.conflict)
            scrub(e)
            self._observe(call, started, failure)
            raise _Failed(failure) from e
        except TransportError as e:
            failure = from_transport_error(e, operation=call.label)
            self._observe(call, started, failure)
            raise _Failed(failure) from e
        finally:
            transport.set_deadline(None)
        self._observe(call, started, None)
        return result

    def _observe(self, call: _Call, started: float, failure: Failure | None) -> None:
        exchange = self._sdk.transport.last_exchange()
        if exchange is not None:
            if call.authenticated:  # the token endpoint has its own, per-client budget (5.1)
                self._pressure.observe(exchange.headers)
            status = exchange.status
            duration = exchange.duration_s
            correlation_id = exchange.headers.get("inin-correlation-id")
        else:
            status = failure.status if failure else 0
            duration = time.monotonic() - started
            correlation_id = None
        if failure is not None and correlation_id is None:
            correlation_id = failure.error.correlation_id
        record = CallRecord(
            method=call.method,
            endpoint=call.endpoint,
            status=status,
            duration_s=duration,
            correlation_id=correlation_id,
            retry_after_s=failure.retry_after_s if failure else None,
        )
        for observer in self._observers:
            try:
                observer(record)
            except Exception:
                _log.warning("genesys call observer failed", exc_info=True)


def _expected_for(
    query: HistoryQuery, batch: tuple[str, ...], intervals: Sequence[str]
) -> dict[str, frozenset[tuple[str, str]]] | None:
    """The (userId, conversationId) pairs to confirm per interval for ``batch``, or None to read
    the window in full: when a user of the batch has no expectation, or names an interval this
    window does not have."""
    if query.expected is None:
        return None
    known = set(intervals)
    per_interval: dict[str, set[tuple[str, str]]] = {}
    for uid in batch:
        mine = query.expected.get(uid)
        if mine is None or not set(mine) <= known:
            return None
        for interval, ids in mine.items():
            per_interval.setdefault(interval, set()).update((uid, cid) for cid in ids)
    return {i: frozenset(pairs) for i, pairs in per_interval.items()}


def connect(settings: Settings, *, budget: RateBudget | None = None) -> SdkGateway:
    """The gateway for the configured Genesys org (``GENESYS_REGION`` or ``GENESYS_API_HOST``).

    ``budget``: the rate budget to spend, by default one of this process's own; ``create_app``
    passes the database-backed one so that every process and replica shares one budget.
    """
    settings.require_genesys()
    host = settings.genesys_api_host or ""
    client_id = settings.genesys_client_id or ""
    secret = settings.genesys_client_secret or ""
    return SdkGateway(
        host,
        client_id,
        secret,
        connect_timeout_s=settings.genesys_connect_timeout_s,
        read_timeout_s=settings.genesys_read_timeout_s,
        budget=budget
        or SlidingWindowBudget(
            settings.rate_limit_per_minute, reserve=settings.deprovision_reserve
        ),
    )
