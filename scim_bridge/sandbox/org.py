"""The simulated org: users, queues, groups and conversation history, with the indices that keep
every request cheap (email, name order, history by userId, a lagging search index).

Not thread-safe by itself: ``state.SandboxState`` serialises access with one lock.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
import uuid

from scim_bridge.sandbox.model import (
    Conversation,
    Division,
    Group,
    Queue,
    Role,
    RoutingEntity,
    User,
)

# A role grant as ``GET /api/v2/authorization/subjects/{id}`` lists it: (subjectId, roleId,
# divisionId, grantMadeAt). ``subjectId`` is the group's for a group-granted role (TF keeps only
# grants whose subjectId is the user: genesyscloud/user_roles ``getAssignedGrants``).
GrantRow = tuple[str, str, str, float]


class Org:
    def __init__(self, rng: random.Random, home_division: Division) -> None:
        self.rng = rng
        self.divisions: dict[str, Division] = {home_division.id: home_division}
        self.home_division_id = home_division.id
        self.users: dict[str, User] = {}
        self._email_index: dict[str, str] = {}  # casefolded email -> user id, deleted users too
        self._sorted: list[User] | None = None
        self.queues: dict[str, Queue] = {}
        self.queue_members: dict[str, dict[str, bool]] = {}  # queue id -> user id -> joined
        # Memberships a group gives (``memberBy=group``, genesys-api.md 3): (queue, user) -> group.
        self.member_via: dict[tuple[str, str], str] = {}
        self.queue_groups: dict[str, dict[str, None]] = {}  # queue id -> group ids (ordered set)
        self.user_queues: dict[str, dict[str, None]] = {}  # user id -> queue ids (ordered set)
        self.conversations: dict[str, Conversation] = {}
        self.history: dict[str, list[str]] = {}  # user id -> conversation ids
        self.active_conversation: dict[str, str] = {}  # user id -> conversation id
        self.groups: dict[str, Group] = {}
        # Search reads a copy of each user that catches up search_lag_s after a change
        # (genesys-api.md 2.4: TF polls search for 3 minutes after a delete).
        self.search_lag_s = 0.0
        self._search_index: dict[str, User] = {}
        self._search_sorted: list[User] | None = None
        self._pending: list[tuple[float, int, str, User]] = []
        self._pending_seq = 0
        # The footprint (issue 12): roles and their grants, routing skills and languages.
        self.roles: dict[str, Role] = {}
        self.grants: dict[str, dict[tuple[str, str], float]] = {}  # subject -> (role, div) -> at
        self.skills: dict[str, RoutingEntity] = {}
        self.languages: dict[str, RoutingEntity] = {}
        self.user_skills: dict[str, dict[str, float]] = {}  # user -> skill id -> proficiency
        self.user_languages: dict[str, dict[str, float]] = {}  # user -> language id -> prof.

    # ids -------------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A v4 uuid drawn from the seeded rng, so that a seed gives the same ids every run."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # users -----------------------------------------------------------------------------------

    def add_user(self, user: User, now: float, *, seeded: bool = False) -> None:
        """Add a user; a seeded one is searchable at once, a created one after the search lag."""
        self.users[user.id] = user
        if not user.state_history:
            user.state_history.append((user.state, now))
        self._email_index[user.email.casefold()] = user.id
        self._sorted = None
        self._reindex(user, now, lag=0.0 if seeded else None)

    def user_by_email(self, email: str) -> User | None:
        user_id = self._email_index.get(email.casefold())
        return self.users.get(user_id) if user_id else None

    def change_email(self, user: User, email: str) -> None:
        self._email_index.pop(user.email.casefold(), None)
        user.email = email
        self._email_index[email.casefold()] = user.id

    def sorted_users(self) -> list[User]:
        """All users by name then id: the stable order listings and searches page through."""
        if self._sorted is None:
            self._sorted = sorted(self.users.values(), key=User.sort_key)
        return self._sorted

    def touched(self, user: User, now: float, *, renamed: bool = False) -> None:
        """Record a change to ``user``: a new version, and (after the lag) a new search copy."""
        user.version += 1
        user.date_modified = now
        if renamed:
            self._sorted = None
        self._reindex(user, now)

    def set_state(self, user: User, state: str, now: float) -> None:
        """Move ``user`` to ``state`` (a version bump, kept in ``state_history``)."""
        user.state = state
        user.state_history.append((state, now))
        self.touched(user, now)

    def reindex_now(self, user: User) -> None:
        """Search sees ``user`` as it is at once (a seeded change, not a simulated one)."""
        self._reindex(user, 0.0, lag=0.0)

    def _reindex(self, user: User, now: float, lag: float | None = None) -> None:
        delay = self.search_lag_s if lag is None else lag
        snapshot = dataclasses.replace(user, employer_info=dict(user.employer_info))
        if delay <= 0:
            self._search_index[user.id] = snapshot
            self._search_sorted = None
            return
        self._pending_seq += 1
        heapq.heappush(self._pending, (now + delay, self._pending_seq, user.id, snapshot))

    def searchable_users(self, now: float) -> list[User]:
        """The search index as it stands at ``now``, in name order."""
        while self._pending and self._pending[0][0] <= now:
            _, _, user_id, snapshot = heapq.heappop(self._pending)
            self._search_index[user_id] = snapshot
            self._search_sorted = None
        if self._search_sorted is None:
            self._search_sorted = sorted(self._search_index.values(), key=User.sort_key)
        return self._search_sorted

    # queues ----------------------------------------------------------------------------------

    def add_queue(self, queue: Queue) -> None:
        self.queues[queue.id] = queue
        self.queue_members[queue.id] = {}

    def set_member(
        self, queue_id: str, user_id: str, joined: bool, *, via_group: str | None = None
    ) -> None:
        self.queue_members[queue_id][user_id] = joined
        self.user_queues.setdefault(user_id, {})[queue_id] = None
        if via_group is not None:
            self.member_via[(queue_id, user_id)] = via_group

    def remove_member(self, queue_id: str, user_id: str) -> bool:
        if self.queue_members[queue_id].pop(user_id, None) is None:
            return False
        self.user_queues.get(user_id, {}).pop(queue_id, None)
        self.member_via.pop((queue_id, user_id), None)
        return True

    def member_by(self, queue_id: str, user_id: str) -> str:
        """``user`` or ``group`` (``QueueMember.memberBy``)."""
        return "group" if (queue_id, user_id) in self.member_via else "user"

    def link_group(self, queue_id: str, group_id: str) -> None:
        """Route ``group`` to ``queue``: each member gets a group membership (memberBy=group)."""
        self.queue_groups.setdefault(queue_id, {})[group_id] = None
        for user_id in self.groups[group_id].member_ids:
            self.group_member_added(group_id, user_id)

    def group_member_added(self, group_id: str, user_id: str) -> None:
        """A new member of ``group`` becomes a member of every queue the group is routed to."""
        for queue_id, group_ids in self.queue_groups.items():
            user = self.users.get(user_id)
            if group_id not in group_ids or user is None or user.state == "deleted":
                continue
            if user_id not in self.queue_members[queue_id]:
                self.set_member(queue_id, user_id, joined=False, via_group=group_id)

    def group_member_removed(self, group_id: str, user_id: str) -> None:
        """Leaving a group ends the queue memberships that group gave."""
        for (queue_id, member), via in list(self.member_via.items()):
            if member == user_id and via == group_id:
                self.remove_member(queue_id, user_id)

    def group_removed(self, group_id: str) -> None:
        """A deleted group takes its queue memberships with it."""
        for user_id in list(self.groups[group_id].member_ids):
            self.group_member_removed(group_id, user_id)
        for group_ids in self.queue_groups.values():
            group_ids.pop(group_id, None)

    def memberships(self, user_id: str) -> list[tuple[Queue, bool]]:
        """(queue, joined) for every queue the user is a member of, by queue name."""
        pairs = [
            (self.queues[q], self.queue_members[q][user_id])
            for q in self.user_queues.get(user_id, {})
        ]
        return sorted(pairs, key=lambda pair: (pair[0].name.casefold(), pair[0].id))

    # history ---------------------------------------------------------------------------------

    def add_conversation(self, conversation: Conversation) -> None:
        self.conversations[conversation.id] = conversation
        for user_id in conversation.user_ids():
            self.history.setdefault(user_id, []).append(conversation.id)

    def purge_history(self, user_id: str, started_before: float | None = None) -> int:
        """Drop ``user_id`` from every participant of its conversations (the GDPR-like fault);
        with ``started_before``, only from conversations that started before that time."""
        purged = 0
        kept = []
        for conversation_id in self.history.pop(user_id, []):
            conversation = self.conversations[conversation_id]
            if started_before is not None and conversation.start >= started_before:
                kept.append(conversation_id)
                continue
            for participant in conversation.participants:
                if participant.user_id == user_id:
                    participant.user_id = None
                    purged += 1
        if kept:
            self.history[user_id] = kept
        return purged

    def oldest_conversation(self, user_id: str) -> float | None:
        """When the user's oldest attributed conversation started (None without any)."""
        starts = [self.conversations[c].start for c in self.history.get(user_id, [])]
        return min(starts, default=None)

    # groups ----------------------------------------------------------------------------------

    def group_by_name(self, name: str) -> Group | None:
        folded = name.casefold()
        return next((g for g in self.groups.values() if g.name.casefold() == folded), None)

    # authorization ---------------------------------------------------------------------------

    def grant(self, subject_id: str, role_id: str, division_id: str, now: float) -> bool:
        """Grant ``role_id`` in ``division_id``; False when the grant was already there."""
        held = self.grants.setdefault(subject_id, {})
        if (role_id, division_id) in held:
            return False
        held[(role_id, division_id)] = now
        return True

    def user_groups(self, user_id: str) -> list[Group]:
        return [g for g in self.groups.values() if user_id in g.member_ids and g.state == "active"]

    def subject_grants(self, subject_id: str, *, include_duplicates: bool) -> list[GrantRow]:
        """The subject's own grants, then (for a user) those of its role-enabled groups.

        Without ``include_duplicates`` one row per (role, division) is kept, and the group's row
        wins over the user's own: the stricter reading of an UNCONFIRMED fact (a caller that
        wants to tell direct grants from group ones must ask for duplicates, as TF does).
        """
        rows: list[GrantRow] = [
            (subject_id, role, division, at)
            for (role, division), at in self.grants.get(subject_id, {}).items()
        ]
        if subject_id in self.users:
            for group in self.user_groups(subject_id):
                if group.roles_enabled:
                    rows.extend(
                        (group.id, role, division, at)
                        for (role, division), at in self.grants.get(group.id, {}).items()
                    )
        if include_duplicates:
            return rows
        kept: dict[tuple[str, str], GrantRow] = {}
        for row in rows:
            key = (row[1], row[2])
            if key not in kept or row[0] != subject_id:
                kept[key] = row
        return list(kept.values())

    def strip_direct_grants(self, user_id: str) -> None:
        """Deactivation and delete remove every role granted to the user itself; roles granted
        through groups stay (genesys-api.md 2.4, HELP "Set a user as inactive or active")."""
        self.grants.pop(user_id, None)

    def strip_routing(self, user_id: str) -> None:
        """Remove the user's routing skills and languages (the sandbox's stricter reading of what
        deactivation and delete do to them: UNCONFIRMED, switchable with a fault)."""
        self.user_skills.pop(user_id, None)
        self.user_languages.pop(user_id, None)

    def role_user_count(self, role_id: str) -> int:
        return sum(
            1
            for subject, held in self.grants.items()
            if subject in self.users and any(role == role_id for role, _ in held)
        )
