"""The history evidence kept for a delete: which conversations analytics attributes to the user.

Kept on the job and in the audit trail: the count, the SHA-256 of the sorted ids (a digest a
reviewer can recompute from an analytics export) and a short sample; the full id list stays on
the job so that the after-delete check can compare id by id.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scim_bridge.deprovision.record import Evidence, EvidencePart

SAMPLE_SIZE = 5
# The window's end is cut to the minute: jobs checked together share one window (one analytics
# query for all of them), and "now" is left out of the interval (genesys-api.md 4.1).
WINDOW_GRAIN_S = 60


@dataclasses.dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    def to_dict(self) -> dict[str, str]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}

    @classmethod
    def from_dict(cls, value: dict[str, str]) -> Window:
        return cls(datetime.fromisoformat(value["since"]), datetime.fromisoformat(value["until"]))


def window_from(now: float, start: Callable[[datetime], datetime]) -> Window:
    """From ``start(until)`` (``HISTORY_SINCE``) to now cut to the minute."""
    until = datetime.fromtimestamp(now - now % WINDOW_GRAIN_S, UTC)
    return Window(min(start(until), until), until)


def digest(ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(set(ids))).encode()).hexdigest()


def shown(summary: Evidence) -> dict[str, Any]:
    """One side of the proof as the audit trail, the tombstone and the admin API show it."""
    shown: dict[str, Any] = {
        "count": summary.count,
        "sha256": summary.sha256,
        "sample": list(summary.sample),
        "window": summary.window.to_dict(),
        "analytics_queries": summary.analytics_queries,
        "users_in_query": summary.users_in_query,
    }
    if summary.missing_count is not None:
        shown["missing_count"] = summary.missing_count
        shown["missing_sample"] = list(summary.missing_sample or ())
    if summary.parts:
        shown["parts"] = [shown_part(p) for p in summary.parts]
    return shown


def shown_part(part: EvidencePart) -> dict[str, Any]:
    """One API's share: the window it covered, how far the lake reached, what it found."""
    shown: dict[str, Any] = {
        "api": part.api,
        "since": part.since.isoformat(),
        "until": part.until.isoformat(),
        "count": part.count,
        "sha256": part.sha256,
        "calls": part.calls,
        "users": part.users,
    }
    if part.data_availability is not None:
        shown["data_availability"] = part.data_availability.isoformat()
    if part.job_id is not None:
        shown["job_id"] = part.job_id
    return shown
