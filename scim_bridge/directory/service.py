"""The directory: SCIM resources read from and written to Genesys, plus the bridge's own record.

The SCIM layer hands over SCIM-shaped dicts and gets ``UserView`` / ``GroupView`` back; how they
render is ``mapping.py``. Writes are one Genesys call with the version just read; a concurrent
writer (409 on the version) makes the directory re-read and re-apply the change, a bounded number
of times. ``active`` is never written here: the SCIM layer hands it to the deprovisioning engine.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from scim_bridge.directory import limits, mapping, rehire
from scim_bridge.directory.errors import (
    AlreadyExists,
    Busy,
    NotFound,
    Rejected,
    TooMany,
    VersionMismatch,
    members_not_found,
    not_found,
    translated,
)
from scim_bridge.directory.known import Known
from scim_bridge.directory.queries import GroupQuery, UserQuery
from scim_bridge.directory.records import LocalFields, LocalRecord, Records
from scim_bridge.genesys import errors as gerrors
from scim_bridge.genesys.api import Gateway
from scim_bridge.genesys.ids import valid_id
from scim_bridge.genesys.types import Criterion, GenesysUser, Group, Page, UserFields, UserState

Resource = dict[str, Any]
Transform = Callable[[Resource], Resource]

MAX_PAGE_SIZE = 100  # Genesys page size used for SCIM pages (genesys-api.md 2.2: max unconfirmed)
WRITE_ATTEMPTS = 3
MAX_GROUPS_WITH_MEMBERS = 20  # groups per page when their members are read too
MATCH_ALL = (Criterion(type="MATCH_ALL"),)


@dataclasses.dataclass(frozen=True)
class UserView:
    user: GenesysUser
    local: LocalRecord | None


@dataclasses.dataclass(frozen=True)
class GroupView:
    group: Group
    member_ids: tuple[str, ...] | None  # None when not read (excludedAttributes=members)
    local: LocalRecord | None


class Recheck(Exception):
    """Raised by an update's ``check`` to have a remembered base replaced by a fresh read."""


@dataclasses.dataclass(frozen=True)
class UserUpdate:
    view: UserView
    active_before: bool
    active_after: bool | None  # what the request asks for (None: not stated)
    changed: bool


# An update's guard: (the base the change applies to, whether it was read just now).
Check = Callable[[UserView, bool], None]
# How a fresh read of a user is made when not a plain GET (``Directory.get_user``).
Reader = Callable[[str], GenesysUser]


def _external(local: LocalRecord | None) -> str | None:
    return local.external_id if local else None


def _window(
    fetch: Callable[[int, int], Page[Any]], start_index: int, count: int
) -> tuple[int, list[Any]]:
    """SCIM's 1-based ``startIndex``/``count`` over Genesys pages: at most two page reads."""
    offset = start_index - 1
    if count <= 0:
        return fetch(1, 1).total, []
    size = min(count, MAX_PAGE_SIZE)
    first = offset // size + 1
    page = fetch(first, size)
    items = list(page.items)[offset % size :]
    if len(items) < count and offset % size and page.total > first * size:
        items.extend(fetch(first + 1, size).items)
    return page.total, items[:count]


class Directory:
    """``call_budget_s``: how long one Genesys call may take, retries and rate-limit waits
    included, before the SCIM request is answered 503 (IdPs time out: Okta after 60 s)."""

    def __init__(self, gateway: Gateway, engine: sa.Engine, *, call_budget_s: float = 10.0) -> None:
        self.gateway = gateway
        self.records = Records(engine)
        self.call_budget_s = call_budget_s
        # Genesys's last answers, to write against (never served: known.py).
        self.known_users: Known[GenesysUser] = Known()
        self.known_groups: Known[Group] = Known()

    def _deadline(self) -> float:
        """The next gateway call's deadline, charged to the request's limits (``limits.py``)."""
        return limits.charge(time.monotonic() + self.call_budget_s)

    # --- users -----------------------------------------------------------------------------

    def get_user(self, user_id: str, *, reader: Reader | None = None) -> UserView:
        """The user as Genesys holds it now (``reader``: how to read it, when not a plain
        ``get_user``: a deactivation's read for its job's snapshot, issue 15)."""
        try:
            with translated("User"):
                if reader is not None:
                    user = reader(user_id)
                else:
                    user = self.gateway.get_user(user_id, deadline=self._deadline())
        except NotFound:
            self.known_users.drop(user_id)
            raise
        if user.state == "deleted":
            self.known_users.drop(user_id)
            raise not_found("User")
        self.known_users.put(user.id, user)
        return UserView(user, self.records.get("User", user.id))

    def answered(self, user: GenesysUser) -> UserView:
        """The view of ``user`` as Genesys answered another part of the bridge just now (a
        deprovisioning job the request ran: its state PATCH's answer, or its read after its last
        change): the SCIM answer without a read of its own (issue 15), remembered as the base of
        the next write like any answer (its version is checked by Genesys)."""
        self.known_users.put(user.id, user)
        return UserView(user, self.records.get("User", user.id))

    def _views(self, users: list[GenesysUser]) -> list[UserView]:
        local = self.records.get_many("User", [u.id for u in users])
        kept = [u for u in users if u.state != "deleted"]
        for user in kept:
            self.known_users.put(user.id, user)
        return [UserView(u, local.get(u.id)) for u in kept]

    def _unlagged(self, users: Sequence[GenesysUser]) -> list[GenesysUser]:
        """Search results with the users the bridge deleted read again by id (a consistent read):
        Genesys's search lags a change (2.4), so a stale copy would show a deleted user as
        existing. Only tombstoned users cost the extra read (one bulk read for all of them)."""
        stale = self.records.tombstoned(u.id for u in users if u.state != "deleted")
        if not stale:
            return list(users)
        with translated("Users"):
            fresh = self.gateway.get_users(sorted(stale), deadline=self._deadline())
        kept = []
        for user in users:
            current = fresh.get(user.id) if user.id in stale else user
            if current is not None and current.state != "deleted":
                kept.append(current)
        return kept

    def list_users(
        self,
        query: UserQuery,
        *,
        start_index: int,
        count: int,
        render: Callable[[UserView], Resource],
    ) -> tuple[int, list[UserView]]:
        if query.keyed:
            by_login = self._users_by_login(query.user_names)
            ids = [
                i
                for i in dict.fromkeys(
                    list(query.ids)
                    + self.records.ids_by_external_id("User", query.external_ids)
                    + self.records.ids_by_user_name("User", query.user_names)
                )
                if i not in by_login
            ]
            with translated("Users"):
                found = dict(self.gateway.get_users(ids, deadline=self._deadline())) if ids else {}
            found.update(by_login)
            views = self._views(sorted(found.values(), key=lambda u: (u.name.lower(), u.id)))
            residual = query.residual
            kept = [v for v in views if residual is None or residual(render(v))]
            offset = start_index - 1
            return len(kept), kept[offset : offset + max(count, 0)]
        criteria = query.criteria or MATCH_ALL

        def fetch(number: int, size: int) -> Page[GenesysUser]:
            with translated("Users"):
                return self.gateway.search_users(
                    criteria, page_number=number, page_size=size, deadline=self._deadline()
                )

        total, users = _window(fetch, start_index, count)
        current = self._unlagged(users)
        return total - (len(users) - len(current)), self._views(current)

    def _users_by_login(self, user_names: Sequence[str]) -> dict[str, GenesysUser]:
        """Users whose Genesys login is one of these (a userName the bridge never recorded is
        the login); the caller's residual filter drops those whose userName is another."""
        found: dict[str, GenesysUser] = {}
        for name in user_names:
            if not mapping.is_email(name):
                continue
            with translated("Users"):
                page = self.gateway.search_users(
                    (Criterion(type="EXACT", fields=("email",), value=name.lower()),),
                    page_size=25,
                    deadline=self._deadline(),
                )
            found.update((u.id, u) for u in self._unlagged(page.items))
        return found

    def scan_users(
        self,
        criteria: tuple[Criterion, ...],
        keep: Callable[[UserView], bool],
        *,
        start_index: int,
        count: int,
        max_pages: int,
    ) -> tuple[int, list[UserView]]:
        """Every user ``criteria`` find, filtered by ``keep``: the exact count kept and the SCIM
        window of them. Reads Genesys pages in order to the end (a filtered total is only known
        then), at most ``max_pages`` of them: more is ``TooMany`` (RFC 7644 §3.4.2.2)."""
        kept: list[UserView] = []
        number, total = 1, 0
        while True:
            if number > max_pages:
                raise TooMany(
                    f"The filter matches {total} users; this token may look through at most "
                    f"{max_pages * MAX_PAGE_SIZE} in one request: narrow the filter."
                )
            with translated("Users"):
                page = self.gateway.search_users(
                    criteria or MATCH_ALL,
                    page_number=number,
                    page_size=MAX_PAGE_SIZE,
                    deadline=self._deadline(),
                )
            total = page.total
            kept.extend(v for v in self._views(self._unlagged(page.items)) if keep(v))
            if number * MAX_PAGE_SIZE >= page.total or not page.items:
                break
            number += 1
        offset = start_index - 1
        return len(kept), kept[offset : offset + max(count, 0)]

    def owners(self, resource_type: str) -> set[str | None]:
        """The distinct owners of the bridge's records of this type (None: unowned)."""
        return self.records.owners(resource_type)

    def create_user(self, resource: Mapping[str, Any], *, owner: str) -> UserView:
        """Create the user; everything that can be checked is checked before the Genesys POST
        (the login email, the userName's uniqueness, the manager). The record is saved right
        after the POST, marked pending until the last step: if a later step fails, the same
        owner's retry of the same create finds it and completes it (issue 13)."""
        fields = mapping.create_fields(resource)  # Rejected: no usable login email
        name = mapping.user_name(resource) or ""
        held = self.records.by_user_name("User", name)
        if held is not None and held.create_pending and held.owner == owner:
            try:
                return self._finish_create(held.genesys_id, resource, resumed=True)
            except NotFound:  # deleted in Genesys since: create it afresh
                self.records.release_user_name("User", held.genesys_id)
        elif held is not None:
            self._release_if_gone(held, name)
        self._check_manager(fields.manager_id)
        state: UserState = "inactive" if mapping.wanted_active(resource) is False else "active"
        first = dataclasses.replace(
            fields, manager_id=None, employee_id=None, preferred_name=None, date_hire=None
        )
        try:
            with translated("User"):
                user = self.gateway.create_user(first, state=state, deadline=self._deadline())
        except AlreadyExists as e:
            raise AlreadyExists(
                f"A Genesys Cloud user with the login {fields.email!r} already exists "
                "(Genesys counts deleted users too)."
            ) from e
        self.records.save(
            "User",
            user.id,
            mapping.local_fields(resource, pending=True),
            owner=owner,
            created=True,
        )
        return self._finish_create(user.id, resource, resumed=False, created=user)

    def _finish_create(
        self,
        user_id: str,
        resource: Mapping[str, Any],
        *,
        resumed: bool,
        created: GenesysUser | None = None,
    ) -> UserView:
        """The steps after the POST (manager, employeeNumber: a PATCH), then the record."""
        if resumed or created is None:
            user = self.get_user(user_id).user
            rest = mapping.user_fields(resource, keep=user.addresses)
            self._check_manager(rest.manager_id)
        else:
            user = created
            full = mapping.create_fields(resource)
            rest = UserFields(manager_id=full.manager_id, employee_id=full.employee_id)
        if resumed or rest != UserFields():
            # With the version the POST (or the read) answered: no read of its own. A 409 here
            # (someone else changed the new user already) re-reads, as any version race does.
            base = user
            with translated("User"):
                try:
                    user = self.gateway.update_user(
                        user_id, rest, version=base.version, deadline=self._deadline()
                    )
                except gerrors.VersionConflict:
                    user = self.gateway.update_user(user_id, rest, deadline=self._deadline())
        self.known_users.put(user.id, user)
        local = self.records.save("User", user_id, mapping.local_fields(resource))
        return UserView(user, local)

    def deleted_holder(self, resource: Mapping[str, Any]) -> tuple[str, str] | None:
        """(the id of the deleted Genesys user holding the resource's userName, where it was
        found: "tombstone" or "search"), or None (re-hire, issue 12)."""
        email = mapping.create_fields(resource).email
        if not email:
            return None
        return rehire.deleted_user_id(
            self.gateway, self.records.engine, email, deadline=self._deadline()
        )

    def rehire_user(self, user_id: str, resource: Mapping[str, Any], *, owner: str) -> UserView:
        """Restore the deleted ``user_id`` with the resource's attributes (``rehire.rehire``);
        the bridge's record starts afresh, owned by the re-hiring token."""
        # Restore, update and maybe deactivate: a few calls, each within the call budget.
        deadline = time.monotonic() + 3 * self.call_budget_s
        user = rehire.rehire(self.gateway, user_id, resource, deadline=deadline)
        self.records.delete("User", user_id)
        local = self.records.save(
            "User", user_id, mapping.local_fields(resource), owner=owner, created=True
        )
        return UserView(user, local)

    def _release_if_gone(self, held: LocalRecord, name: str) -> None:
        """``name`` is held by ``held``: free it when that Genesys user is gone, else 409."""
        try:
            self.get_user(held.genesys_id)
        except NotFound:
            self.records.release_user_name("User", held.genesys_id)
            return
        # Never the holder's id: it may be a user the asking token cannot reach (trial-sec B3).
        raise AlreadyExists(
            f"userName {name!r} is already taken (unique, case-insensitively: RFC 7643 §4.1.1)."
        )

    def _check_manager(self, manager_id: str | None) -> None:
        """A manager must be an existing user (checked before the create's POST)."""
        if not manager_id:
            return
        try:
            self.get_user(manager_id)
        except (NotFound, Rejected):
            raise Rejected(
                f"{mapping.ENTERPRISE_SCHEMA}:manager.value: no Genesys Cloud user has the id "
                f"{manager_id!r}."
            ) from None

    def _check_user_name(self, user_id: str, name: str | None) -> None:
        if not name:
            return
        held = self.records.by_user_name("User", name)
        if held is not None and held.genesys_id != user_id:
            self._release_if_gone(held, name)

    def update_user(
        self,
        user_id: str,
        transform: Transform,
        *,
        render: Callable[[UserView], Resource],
        expected_version: int | None = None,
        check: Check | None = None,
        state_from_memory: bool = True,
        reader: Reader | None = None,
    ) -> UserUpdate:
        """Read, ``transform`` the SCIM form, write what changed (one Genesys PATCH).

        The read is the last answer Genesys gave this process for the user, when there is one
        (``known.py``): the PATCH carries its version, so Genesys refuses it if the user changed
        since. ``transform`` is re-applied to a fresh read when the version is refused (a
        concurrent writer, or a remembered answer gone stale); a change that would write nothing
        to Genesys is decided on a fresh read only. ``check`` sees each base before anything is
        written (a scoped token's reach) and may raise ``Recheck`` to have a remembered one
        replaced by a fresh read. ``state_from_memory``: a change of ``active`` alone may be
        handed on from a remembered user (``_state_change``). ``reader``: how a fresh read is
        made (``get_user``).
        """
        remembered = self.known_users.get(user_id)
        if remembered is not None and expected_version not in (None, remembered.version):
            remembered = None
        for _attempt in range(WRITE_ATTEMPTS + (remembered is not None)):
            if remembered is not None:
                view, fresh = UserView(remembered, self.records.get("User", user_id)), False
                remembered = None
            else:
                view, fresh = self.get_user(user_id, reader=reader), True
            try:
                done = self._apply_user(
                    view, fresh, transform, render, expected_version, check, state_from_memory
                )
            except Recheck:
                if fresh:
                    raise
                continue
            if done is not None:
                return done
        raise Busy("The user kept changing concurrently in Genesys Cloud; try again.")

    def _apply_user(
        self,
        view: UserView,
        fresh: bool,
        transform: Transform,
        render: Callable[[UserView], Resource],
        expected_version: int | None,
        check: Check | None,
        state_from_memory: bool,
    ) -> UserUpdate | None:
        """One attempt of ``update_user`` on ``view``; None: go again on a fresh read."""
        if check is not None:
            check(view, fresh)
        if expected_version is not None and view.user.version != expected_version:
            raise VersionMismatch(
                f"If-Match names version {expected_version}; the current one is "
                f"{view.user.version}."
            )
        before = render(view)
        after = transform(copy.deepcopy(before))
        fields = mapping.changed_fields(view.user, before, after)
        local_before = mapping.local_fields(before)
        local_after = mapping.local_fields(after)
        if fields is None and not fresh:
            return self._state_change(view, after, local_after != local_before, state_from_memory)
        if local_after.user_name != local_before.user_name:
            self._check_user_name(view.user.id, local_after.user_name)
        user = view.user
        if fields is not None:
            patched = self._patch_user(user, fields, conditional=expected_version is not None)
            if patched is None:
                return None
            user = patched
        local = view.local
        if fields is not None or local_after != local_before:
            local = self.records.save("User", view.user.id, local_after)
        return UserUpdate(
            view=UserView(user, local),
            active_before=view.user.state == "active",
            active_after=mapping.wanted_active(after),
            changed=fields is not None or local_after != local_before,
        )

    @staticmethod
    def _state_change(
        view: UserView, after: Resource, local_changed: bool, state_from_memory: bool
    ) -> UserUpdate | None:
        """A change of ``active`` alone, decided on a remembered user: handed on as it is (the
        deprovisioning job reads the user itself before acting, so a stale memory costs at most
        a job that finds nothing to do). Anything else: None, to go again on a fresh read (a
        remembered "already so" is never trusted: that would answer for Genesys unasked)."""
        wanted = mapping.wanted_active(after)
        if not state_from_memory or local_changed or wanted is None:
            return None
        if wanted == (view.user.state == "active"):
            return None
        return UserUpdate(view=view, active_before=not wanted, active_after=wanted, changed=False)

    def _patch_user(
        self, base: GenesysUser, fields: UserFields, *, conditional: bool
    ) -> GenesysUser | None:
        """PATCH ``fields`` with ``base``'s version: the user Genesys answers, or None when the
        version is no longer the current one (``VersionMismatch`` for an If-Match write)."""
        try:
            with translated("User"):
                user = self.gateway.update_user(
                    base.id, fields, version=base.version, deadline=self._deadline()
                )
        except Busy as e:
            if not isinstance(e.__cause__, gerrors.VersionConflict):
                raise
            self.known_users.drop(base.id)
            if conditional:
                raise VersionMismatch("The user changed since the If-Match version.") from e
            return None
        except AlreadyExists as e:
            raise AlreadyExists(
                f"Another Genesys Cloud user already has userName {fields.email!r}."
            ) from e
        self.known_users.put(user.id, user)
        return user

    # --- groups ----------------------------------------------------------------------------

    def _members(self, group_id: str) -> tuple[str, ...]:
        with translated("Group members"):
            return tuple(self.gateway.group_member_ids(group_id, deadline=self._deadline()))

    def get_group(self, group_id: str, *, with_members: bool = True) -> GroupView:
        try:
            with translated("Group"):
                group = self.gateway.get_group(group_id, deadline=self._deadline())
        except NotFound:
            self.known_groups.drop(group_id)
            raise
        if group.state == "deleted":
            self.known_groups.drop(group_id)
            raise not_found("Group")
        self.known_groups.put(group.id, group)
        members = self._members(group.id) if with_members else None
        return GroupView(group, members, self.records.get("Group", group.id))

    def list_groups(
        self,
        query: GroupQuery,
        *,
        start_index: int,
        count: int,
        with_members: bool,
        render: Callable[[GroupView], Resource],
    ) -> tuple[int, list[GroupView]]:
        if query.keyed:
            ids = list(query.ids) + self.records.ids_by_external_id("Group", query.external_ids)
            views: list[GroupView] = []
            for gid in dict.fromkeys(ids):
                try:
                    views.append(self.get_group(gid, with_members=with_members))
                except NotFound:
                    continue
            residual = query.residual
            kept = [v for v in views if residual is None or residual(render(v))]
            offset = start_index - 1
            return len(kept), kept[offset : offset + max(count, 0)]

        def fetch(number: int, size: int) -> Page[Group]:
            with translated("Groups"):
                if query.criteria:
                    return self.gateway.search_groups(
                        query.criteria,
                        page_number=number,
                        page_size=size,
                        deadline=self._deadline(),
                    )
                return self.gateway.list_groups(
                    page_number=number, page_size=size, deadline=self._deadline()
                )

        if with_members:
            # Each group's members are one or more calls: a page of 100 groups was 100+ calls
            # (55 s with Genesys at 2.5 s). RFC 7644 §3.4.2.4 lets a page hold fewer than count.
            count = min(count, MAX_GROUPS_WITH_MEMBERS)
        total, groups = _window(fetch, start_index, count)
        groups = [g for g in groups if g.state != "deleted"]
        local = self.records.get_many("Group", [g.id for g in groups])
        return total, [
            GroupView(g, self._members(g.id) if with_members else None, local.get(g.id))
            for g in groups
        ]

    def scan_groups(
        self,
        keep: Callable[[GroupView], bool],
        query: GroupQuery,
        *,
        start_index: int,
        count: int,
        with_members: bool,
        max_pages: int,
    ) -> tuple[int, list[GroupView]]:
        """As ``scan_users``, for groups (their members read for the window only)."""
        kept: list[GroupView] = []
        number, total = 1, 0
        while True:
            if number > max_pages:
                raise TooMany(
                    f"The filter matches {total} groups; this token may look through at most "
                    f"{max_pages * MAX_PAGE_SIZE} in one request: narrow the filter."
                )
            with translated("Groups"):
                if query.criteria:
                    page = self.gateway.search_groups(
                        query.criteria,
                        page_number=number,
                        page_size=MAX_PAGE_SIZE,
                        deadline=self._deadline(),
                    )
                else:
                    page = self.gateway.list_groups(
                        page_number=number, page_size=MAX_PAGE_SIZE, deadline=self._deadline()
                    )
            total = page.total
            groups = [g for g in page.items if g.state != "deleted"]
            local = self.records.get_many("Group", [g.id for g in groups])
            kept.extend(
                view for view in (GroupView(g, None, local.get(g.id)) for g in groups) if keep(view)
            )
            if number * MAX_PAGE_SIZE >= page.total or not page.items:
                break
            number += 1
        offset = start_index - 1
        window = kept[offset : offset + max(count, 0)]
        if with_members:
            window = [dataclasses.replace(v, member_ids=self._members(v.group.id)) for v in window]
        return len(kept), window

    def touch_user(self, user_id: str) -> None:
        """A change of the user's state was requested through the bridge: a write, so
        ``meta.lastModified`` moves (docs/scim-mapping.md)."""
        self.records.touch("User", user_id)

    def claim(self, resource_type: str, genesys_id: str, owner: str) -> None:
        """``owner`` owns the resource from now on if nobody did (a write through a token)."""
        self.records.claim(resource_type, genesys_id, owner)

    def _name_taken(self, name: str, *, other_than: str | None = None) -> bool:
        with translated("Groups"):
            page = self.gateway.search_groups(
                (Criterion(type="EXACT", fields=("name",), value=name),),
                page_size=25,
                deadline=self._deadline(),
            )
        return any(g.name.lower() == name.lower() and g.id != other_than for g in page.items)

    def _missing_users(self, user_ids: Sequence[str]) -> list[str]:
        """Those of ``user_ids`` that are no Genesys user (or a deleted one): one bulk read."""
        wanted = [i for i in dict.fromkeys(user_ids) if valid_id(i)]
        found: dict[str, GenesysUser] = {}
        if wanted:
            with translated("Group members"):
                found = self.gateway.get_users(wanted, deadline=self._deadline())
        return sorted(
            i for i in dict.fromkeys(user_ids) if i not in found or found[i].state == "deleted"
        )

    def create_group(self, resource: Mapping[str, Any], *, owner: str) -> GroupView:
        """Everything that can be refused is checked before the group's POST (its name, its
        members): a refused create leaves nothing in Genesys (trial-sec B4)."""
        name = mapping.group_name(resource) or ""
        if self._name_taken(name):
            raise AlreadyExists(f"A group named {name!r} already exists.")
        members = mapping.group_member_ids(resource)
        missing = self._missing_users(members)
        if missing:
            raise members_not_found(missing)
        with translated("Group"):
            group = self.gateway.create_group(name, deadline=self._deadline())
            if members:
                self.gateway.add_group_members(
                    group.id, members, version=group.version, deadline=self._deadline()
                )
                # The members' POST answers nothing: the 201 needs the group's new version.
                group = self.gateway.get_group(group.id, deadline=self._deadline())
        self.known_groups.put(group.id, group)
        local = self.records.save(
            "Group",
            group.id,
            LocalFields(external_id=mapping.local_fields(resource).external_id),
            owner=owner,
            created=True,
        )
        return GroupView(group, tuple(members), local)

    def _write_group_fields(
        self, view: GroupView, after: Resource, expected_version: int | None
    ) -> tuple[Group, LocalRecord | None]:
        """The name (one PUT, with the version just read) and externalId ``after`` asks for."""
        group = view.group
        name = mapping.group_name(after)
        if name and name != group.name:
            if name.lower() != group.name.lower() and self._name_taken(name, other_than=group.id):
                raise AlreadyExists(f"A group named {name!r} already exists.")
            try:
                with translated("Group"):
                    group = self.gateway.update_group(
                        group.id,
                        name=name,
                        description=group.description,
                        version=group.version,
                        deadline=self._deadline(),
                    )
            except Busy as e:
                self.known_groups.drop(group.id)
                if (
                    isinstance(e.__cause__, gerrors.VersionConflict)
                    and expected_version is not None
                ):
                    raise VersionMismatch("The group changed since the If-Match version.") from e
                raise
            self.known_groups.put(group.id, group)
        external = mapping.local_fields(after).external_id
        local = view.local
        if group is not view.group or external != (local.external_id if local else None):
            local = self.records.save("Group", group.id, LocalFields(external_id=external))
        return group, local

    def _change_members(
        self, group_id: str, added: Sequence[str], removed: Sequence[str], version: int | None
    ) -> None:
        """Add (with ``version`` when known: Genesys refuses a stale one, and the gateway then
        reads it) and remove members; the group's version is unknown afterwards."""
        if added:
            try:
                with translated("Group members"):
                    self.gateway.add_group_members(
                        group_id, added, version=version, deadline=self._deadline()
                    )
            except Rejected as e:
                # Genesys names unknown users in its own words: the answer names them as a
                # token's unreachable ones are named (trial-sec B3), read only on this failure.
                missing = self._missing_users(added)
                if missing:
                    raise members_not_found(missing) from e
                raise
        with translated("Group members"):
            if removed:
                self.gateway.remove_group_members(group_id, removed, deadline=self._deadline())
        if added or removed:
            self.known_groups.drop(group_id)

    def _group_base(
        self, group_id: str, expected_version: int | None, *, with_members: bool = True
    ) -> GroupView:
        """The group read afresh, refused when it is not at the If-Match version."""
        view = self.get_group(group_id, with_members=with_members)
        if expected_version is not None and view.group.version != expected_version:
            raise VersionMismatch(
                f"If-Match names version {expected_version}; the current one is "
                f"{view.group.version}."
            )
        return view

    def update_group(
        self,
        group_id: str,
        transform: Transform,
        *,
        render: Callable[[GroupView], Resource],
        expected_version: int | None = None,
    ) -> GroupView:
        """Replace the group's SCIM form with ``transform``'s (PUT, and PATCHes that replace the
        member list): the members are read, and the answer is read again after the change."""
        view = self._group_base(group_id, expected_version)
        before = render(view)
        after = transform(copy.deepcopy(before))
        group, local = self._write_group_fields(view, after, expected_version)
        old = list(view.member_ids or ())
        new = mapping.group_member_ids(after)
        added = [m for m in new if m not in old]
        removed = [m for m in old if m not in new]
        self._change_members(group_id, added, removed, group.version)
        if added or removed:
            with translated("Group"):
                group = self.gateway.get_group(group_id, deadline=self._deadline())
            self.known_groups.put(group.id, group)
            local = self.records.save("Group", group_id, LocalFields(external_id=_external(local)))
        return GroupView(group, tuple(new), local)

    def change_group_members(
        self,
        group_id: str,
        added: Sequence[str],
        removed: Sequence[str],
        *,
        transform: Transform | None = None,
        render: Callable[[GroupView], Resource],
        expected_version: int | None = None,
    ) -> GroupView | None:
        """A PATCH that names the members it adds and removes (how Okta and Entra push
        membership, idp-behaviour.md 1(g), 2(g)): those changes as Genesys calls, without listing
        the group's members. ``transform`` (the PATCH's other operations) is applied to the group
        read afresh, without members. The group as Genesys answered, or None when members changed
        (Genesys's answer to a member change carries no version: the group was not read again).
        """
        version = None
        view = None
        if transform is not None or expected_version is not None:
            view = self._group_base(group_id, expected_version, with_members=False)
            after = transform(render(view)) if transform is not None else render(view)
            group, local = self._write_group_fields(view, after, expected_version)
            view = GroupView(group, None, local)
            version = group.version
        else:
            known = self.known_groups.get(group_id)
            version = known.version if known is not None else None
        self._change_members(group_id, added, removed, version)
        if not (added or removed):
            return view if view is not None else self.get_group(group_id, with_members=False)
        local = self.records.get("Group", group_id)
        self.records.save("Group", group_id, LocalFields(external_id=_external(local)))
        return None

    def delete_group(self, group_id: str) -> None:
        self.get_group(group_id, with_members=False)
        with translated("Group"):
            self.gateway.delete_group(group_id, deadline=self._deadline())
        self.records.delete("Group", group_id)
