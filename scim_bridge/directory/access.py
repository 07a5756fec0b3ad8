"""Which users and groups one SCIM token may see and change (issue 14; DESIGN.md "Configuration").

A token has *scopes* (``email:GLOB``, ``division:ID``; repeatable, a union; none means the whole
org) and *owns* what was written through it (``directory_resources.owner``). For a token:

* a **user** exists when no other token owns it and, if the token has scopes, one of them
  matches: ``email:GLOB`` the user's email or username (``fnmatch``, case-insensitive),
  ``division:ID`` the user's Genesys division;
* a **group** exists when no other token owns it and, if the token has scopes, the token owns it
  (Genesys groups carry no email or division a scope could match);
* anything else does not exist for it: 404, and absent from lists and filters.

An operator moves what one token owns to another with ``scim-bridge tokens transfer``.
Pure values and functions: no database, no Genesys.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re

from scim_bridge.genesys.types import Criterion, GenesysUser

_DIVISION_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_GLOB = re.compile(r"^[^\s]{1,254}$")


class ScopeError(ValueError):
    """A scope that cannot be accepted; the message says what is expected."""


@dataclasses.dataclass(frozen=True)
class Scope:
    kind: str  # "email" | "division"
    value: str

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, sep, value = text.strip().partition(":")
        kind = kind.lower()
        if sep and kind == "email" and _GLOB.match(value):
            return cls("email", value.lower())
        if sep and kind == "division" and _DIVISION_ID.match(value):
            return cls("division", value)
        raise ScopeError(
            f"a scope is email:GLOB (e.g. email:*@emea.example.com) or division:ID, got {text!r}"
        )

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    def matches(self, user: GenesysUser) -> bool:
        if self.kind == "division":
            return user.division_id == self.value
        names = {n.lower() for n in (user.email, user.username) if n}
        return any(fnmatch.fnmatchcase(name, self.value) for name in names)

    def criterion(self) -> Criterion | None:
        """A Genesys search criterion matching at least what this scope matches (a superset the
        caller filters exactly), or None when the scope cannot be pushed down."""
        if self.kind == "division":
            return Criterion(type="EXACT", fields=("division.id",), value=self.value, operator="OR")
        body = self.value
        wild = set("*?[")
        if body.startswith("*") and body[1:] and not wild & set(body[1:]):
            return Criterion(type="CONTAINS", fields=("email",), value=body[1:], operator="OR")
        if body.endswith("*") and body[:-1] and not wild & set(body[:-1]):
            return Criterion(type="STARTS_WITH", fields=("email",), value=body[:-1], operator="OR")
        if not wild & set(body):
            return Criterion(type="EXACT", fields=("email",), value=body, operator="OR")
        return None


@dataclasses.dataclass(frozen=True)
class Access:
    """What one token may reach: ``owner`` is its name, ``scopes`` its union of scopes."""

    owner: str
    scopes: tuple[Scope, ...] = ()

    @property
    def whole_org(self) -> bool:
        return not self.scopes

    def owns_or_unowned(self, owner: str | None) -> bool:
        return owner is None or owner == self.owner

    def user_in_scope(self, user: GenesysUser) -> bool:
        return self.whole_org or any(scope.matches(user) for scope in self.scopes)

    def fields_in_scope(self, email: str | None, division_id: str | None) -> bool:
        """Whether a user with this email (also its username) and division is in scope: what a
        create or an update must keep true (checked before anything is written)."""
        if self.whole_org:
            return True
        probe = GenesysUser(
            id="", name="", email=email, state="active", version=0, division_id=division_id
        )
        return any(scope.matches(probe) for scope in self.scopes)

    def may_see_user(self, user: GenesysUser, owner: str | None) -> bool:
        return self.owns_or_unowned(owner) and self.user_in_scope(user)

    def may_see_group(self, owner: str | None) -> bool:
        if self.whole_org:
            return self.owns_or_unowned(owner)
        return owner == self.owner

    def pushdown(self) -> Criterion | None:
        """The scopes as one Genesys criterion (an OR group), when each can be pushed down."""
        if self.whole_org:
            return None
        parts = [scope.criterion() for scope in self.scopes]
        if any(p is None for p in parts):
            return None
        # A group's own type is required but undescribed: a neutral EXACT, as scim/filters.py.
        return Criterion(type="EXACT", operator="AND", group=tuple(p for p in parts if p))
