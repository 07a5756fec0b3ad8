"""The directory as one SCIM token sees it (``access.py`` says what it may reach).

``ScopedDirectory`` has the ``Directory`` methods the SCIM layer calls and answers them for one
token: a user or group outside its reach is ``NotFound`` (the same 404 as one that does not exist,
so that a token learns nothing about the rest of the org), is absent from lists and filters, and
cannot be written. Every such refusal of a named resource is reported to ``on_denied`` (the SCIM
layer audits it, throttled). What a token writes becomes its own (``Records.claim``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scim_bridge.directory import mapping
from scim_bridge.directory.access import Access
from scim_bridge.directory.errors import NotFound, OutOfScope, members_not_found, not_found
from scim_bridge.directory.queries import GroupQuery, UserQuery
from scim_bridge.directory.service import (
    Directory,
    GroupView,
    Reader,
    Recheck,
    Resource,
    Transform,
    UserUpdate,
    UserView,
)
from scim_bridge.genesys.ids import valid_id
from scim_bridge.genesys.types import Criterion, GenesysUser

# Lists a token may only see part of are filtered by reading Genesys pages (100 each) in order:
# at most this many per request, more is ``tooMany`` (RFC 7644 §3.4.2.2).
MAX_SCAN_PAGES = 10
# A keyed filter (``id eq``, ``externalId eq``) lists at most this many resources.
MAX_KEYED = 10**6

Denied = Callable[[str, str, str], None]  # (resource type, id, reason)


def _require_id(resource_type: str, resource_id: str) -> None:
    """An id that cannot be a Genesys id is not found, before any call (genesys/ids.py)."""
    if not valid_id(resource_id):
        raise not_found(resource_type)


class ScopedDirectory:
    def __init__(self, directory: Directory, access: Access, on_denied: Denied) -> None:
        self.inner = directory
        self.access = access
        self._on_denied = on_denied

    # --- what the token may reach ------------------------------------------------------

    def _deny(self, resource_type: str, resource_id: str, reason: str) -> NotFound:
        self._on_denied(resource_type, resource_id, reason)
        return not_found(resource_type)

    def _user_reason(self, view: UserView) -> str | None:
        owner = view.local.owner if view.local else None
        if not self.access.owns_or_unowned(owner):
            return "owned-by-another-token"
        if not self.access.user_in_scope(view.user):
            return "out-of-scope"
        return None

    def _group_reason(self, view: GroupView) -> str | None:
        return self._group_owner_reason(view.local.owner if view.local else None)

    def _group_owner_reason(self, owner: str | None) -> str | None:
        """Whether the token may reach a group follows from its owner alone (the bridge's own
        record): no Genesys read is needed to refuse or allow it."""
        if not self.access.owns_or_unowned(owner):
            return "owned-by-another-token"
        if not self.access.may_see_group(owner):
            return "out-of-scope"
        return None

    def _restricted(self, resource_type: str) -> bool:
        """Whether some of the org is hidden from this token (else lists need no filtering)."""
        if not self.access.whole_org:
            return True
        return bool(self.inner.owners(resource_type) - {None, self.access.owner})

    def check_user(self, user_id: str) -> None:
        """Raise ``NotFound`` unless the token may change this user, reading Genesys only when a
        scope needs the user's email or division (ownership is the bridge's own record)."""
        _require_id("User", user_id)
        local = self.inner.records.get("User", user_id)
        owner = local.owner if local else None
        if not self.access.owns_or_unowned(owner):
            raise self._deny("User", user_id, "owned-by-another-token")
        if not self.access.whole_org:
            self.get_user(user_id)

    # --- users ---------------------------------------------------------------------------

    def get_user(self, user_id: str) -> UserView:
        _require_id("User", user_id)
        view = self.inner.get_user(user_id)
        reason = self._user_reason(view)
        if reason is not None:
            raise self._deny("User", user_id, reason)
        return view

    def answered(self, user: GenesysUser) -> UserView:
        """``Directory.answered``, checked for this token's reach as ``get_user`` is."""
        _require_id("User", user.id)
        view = self.inner.answered(user)
        reason = self._user_reason(view)
        if reason is not None:
            raise self._deny("User", user.id, reason)
        return view

    def touch_user(self, user_id: str) -> None:
        """``Directory.touch_user``, after a write this token was allowed (``update_user``)."""
        _require_id("User", user_id)
        self.inner.touch_user(user_id)

    def list_users(
        self,
        query: UserQuery,
        *,
        start_index: int,
        count: int,
        render: Callable[[UserView], Resource],
    ) -> tuple[int, list[UserView]]:
        if not self._restricted("User"):
            return self.inner.list_users(query, start_index=start_index, count=count, render=render)

        def keep(view: UserView) -> bool:
            return self._user_reason(view) is None

        if query.keyed:
            _, views = self.inner.list_users(query, start_index=1, count=MAX_KEYED, render=render)
            kept = [v for v in views if keep(v)]
            offset = start_index - 1
            return len(kept), kept[offset : offset + max(count, 0)]
        criteria: tuple[Criterion, ...] = tuple(query.criteria or ())
        pushed = self.access.pushdown()
        if pushed is not None:
            criteria += (pushed,)
        return self.inner.scan_users(
            criteria, keep, start_index=start_index, count=count, max_pages=MAX_SCAN_PAGES
        )

    def _require_in_scope(self, resource: Mapping[str, Any], current: UserView | None) -> None:
        fields = mapping.user_fields(resource)
        email = fields.email or (current.user.email if current else None)
        division = fields.division_id or (current.user.division_id if current else None)
        if not self.access.fields_in_scope(email, division):
            self._on_denied("User", current.user.id if current else "(new)", "write-out-of-scope")
            raise OutOfScope(
                "This token's scope does not include a user with that userName or division."
            )

    def create_user(self, resource: Mapping[str, Any], *, owner: str) -> UserView:
        self._require_in_scope(resource, None)  # before Genesys holds anything
        return self.inner.create_user(resource, owner=owner)

    def deleted_holder(self, resource: Mapping[str, Any]) -> tuple[str, str] | None:
        return self.inner.deleted_holder(resource)

    def rehire_user(self, user_id: str, resource: Mapping[str, Any], *, owner: str) -> UserView:
        """A re-hire is a create as far as SCIM knows (issue 12): the new attributes must be in
        the token's scope, and the restored user becomes the token's (its record starts afresh)."""
        self._require_in_scope(resource, None)
        return self.inner.rehire_user(user_id, resource, owner=owner)

    def update_user(
        self,
        user_id: str,
        transform: Transform,
        *,
        render: Callable[[UserView], Resource],
        expected_version: int | None = None,
        reader: Reader | None = None,
    ) -> UserUpdate:
        """``Directory.update_user`` with this token's checks on the base it writes against: no
        read of its own (the directory's read, or its remembered answer, is the one checked)."""
        _require_id("User", user_id)
        base: list[UserView] = []

        def check(view: UserView, fresh: bool) -> None:
            reason = self._user_reason(view)
            if reason is not None:
                if not fresh:
                    raise Recheck  # refuse on what Genesys says now, not on what it said
                raise self._deny("User", user_id, reason)
            base[:] = [view]

        def guarded(before: Resource) -> Resource:
            after = transform(before)
            if not self.access.whole_org:
                self._require_in_scope(after, base[0])
            return after

        result = self.inner.update_user(
            user_id,
            guarded,
            render=render,
            expected_version=expected_version,
            check=check,
            # A scope is checked on the user's email and division: a job is requested on what
            # Genesys says now, never on what it said (ownership is the bridge's own record).
            state_from_memory=self.access.whole_org,
            reader=reader,
        )
        self.inner.claim("User", user_id, self.access.owner)
        return result

    # --- groups --------------------------------------------------------------------------

    def _check_group(self, group_id: str) -> None:
        """``NotFound`` unless the token may reach the group (from the bridge's record)."""
        _require_id("Group", group_id)
        local = self.inner.records.get("Group", group_id)
        reason = self._group_owner_reason(local.owner if local else None)
        if reason is not None:
            raise self._deny("Group", group_id, reason)

    def get_group(self, group_id: str, *, with_members: bool = True) -> GroupView:
        self._check_group(group_id)
        return self.inner.get_group(group_id, with_members=with_members)

    def list_groups(
        self,
        query: GroupQuery,
        *,
        start_index: int,
        count: int,
        with_members: bool,
        render: Callable[[GroupView], Resource],
    ) -> tuple[int, list[GroupView]]:
        if not self._restricted("Group"):
            return self.inner.list_groups(
                query,
                start_index=start_index,
                count=count,
                with_members=with_members,
                render=render,
            )

        def keep(view: GroupView) -> bool:
            return self._group_reason(view) is None

        if query.keyed:
            _, views = self.inner.list_groups(
                query, start_index=1, count=MAX_KEYED, with_members=with_members, render=render
            )
            kept = [v for v in views if keep(v)]
            offset = start_index - 1
            return len(kept), kept[offset : offset + max(count, 0)]
        return self.inner.scan_groups(
            keep,
            query,
            start_index=start_index,
            count=count,
            with_members=with_members,
            max_pages=MAX_SCAN_PAGES,
        )

    def _require_members_visible(self, member_ids: list[str]) -> None:
        """A token may add to a group only users it can see: for a token of the whole org that
        is the bridge's record of their owners; a scope needs one bulk read of them."""
        if not member_ids or not self._restricted("User"):
            return
        if self.access.whole_org:
            local = self.inner.records.get_many("User", member_ids)
            missing = sorted(
                uid
                for uid in set(member_ids)
                if uid in local and not self.access.owns_or_unowned(local[uid].owner)
            )
        else:
            query = UserQuery(ids=tuple(member_ids), residual=lambda _: True)
            _, views = self.list_users(query, start_index=1, count=MAX_KEYED, render=lambda _: {})
            missing = sorted(set(member_ids) - {v.user.id for v in views})
        if missing:
            for user_id in missing:
                self._on_denied("User", user_id, "group-member-out-of-reach")
            raise members_not_found(missing)

    def create_group(self, resource: Mapping[str, Any], *, owner: str) -> GroupView:
        self._require_members_visible(mapping.group_member_ids(resource))
        return self.inner.create_group(resource, owner=owner)

    def update_group(
        self,
        group_id: str,
        transform: Transform,
        *,
        render: Callable[[GroupView], Resource],
        expected_version: int | None = None,
    ) -> GroupView:
        self._check_group(group_id)

        def guarded(before: Resource) -> Resource:
            after = transform(before)
            old = set(mapping.group_member_ids(before))
            self._require_members_visible(
                [m for m in mapping.group_member_ids(after) if m not in old]
            )
            return after

        view = self.inner.update_group(
            group_id, guarded, render=render, expected_version=expected_version
        )
        self.inner.claim("Group", group_id, self.access.owner)
        return view

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
        self._check_group(group_id)
        self._require_members_visible(list(added))
        view = self.inner.change_group_members(
            group_id,
            added,
            removed,
            transform=transform,
            render=render,
            expected_version=expected_version,
        )
        self.inner.claim("Group", group_id, self.access.owner)
        return view

    def delete_group(self, group_id: str) -> None:
        self._check_group(group_id)
        self.inner.delete_group(group_id)
