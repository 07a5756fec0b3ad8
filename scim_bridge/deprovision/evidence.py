"""The history evidence kept for a delete: which conversations analytics attributes to the user.

Kept on the job and in the audit trail: the count, the SHA-256 of the sorted ids (a digest a
reviewer can recompute from an analytics export) and a short sample; the full id list stays on
the job so that the after-delete check can compare id by id.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scim_bridge.deprovision.record import Evidence

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


def window(now: float, lookback_days: int) -> Window:
    until = datetime.fromtimestamp(now - now % WINDOW_GRAIN_S, UTC)
    return Window(until - timedelta(days=lookback_days), until)


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
    return shown
