"""What the SCIM layer asks the directory to list: Genesys criteria or a keyed lookup."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from scim_bridge.genesys.types import Criterion

Residual = Callable[[Mapping[str, Any]], bool]


@dataclasses.dataclass(frozen=True)
class UserQuery:
    """``criteria`` for a Genesys search (None and not keyed: every user), or a keyed lookup:
    the users with these ids, externalIds or userNames, kept when ``residual`` accepts their SCIM
    form."""

    criteria: tuple[Criterion, ...] | None = None
    ids: tuple[str, ...] = ()
    external_ids: tuple[str, ...] = ()
    user_names: tuple[str, ...] = ()
    residual: Residual | None = None

    @property
    def keyed(self) -> bool:
        return self.residual is not None


@dataclasses.dataclass(frozen=True)
class GroupQuery:
    criteria: tuple[Criterion, ...] | None = None
    ids: tuple[str, ...] = ()
    external_ids: tuple[str, ...] = ()
    residual: Residual | None = None

    @property
    def keyed(self) -> bool:
        return self.residual is not None
