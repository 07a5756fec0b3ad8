"""Policies from the environment (docs/deprovisioning.md): who is never touched, dry runs, the
delete breaker, the grace period after which a deactivated user is deleted, and how far back the
history proof goes (``HISTORY_SINCE``) and how it waits on Genesys's async jobs."""

from __future__ import annotations

import dataclasses
import fnmatch

from scim_bridge.config import DEFAULT_HISTORY_SINCE, DeleteBreaker, HistorySince, Settings


@dataclasses.dataclass(frozen=True)
class Policies:
    protected: tuple[str, ...] = ()
    dry_run: bool = False
    breaker: DeleteBreaker | None = None
    delete_inactive_after_s: float | None = None
    history_since: HistorySince = DEFAULT_HISTORY_SINCE
    history_job_poll_s: float = 10.0
    history_job_resubmits: int = 3
    history_batch_window_s: float = 15.0  # the worker's gathering of verify_before checks

    @classmethod
    def from_settings(cls, settings: Settings) -> Policies:
        return cls(
            protected=settings.protected_users,
            dry_run=settings.dry_run,
            breaker=settings.delete_breaker,
            delete_inactive_after_s=settings.delete_inactive_after_s,
            history_since=settings.history_since,
            history_job_poll_s=settings.history_job_poll_s,
            history_job_resubmits=settings.history_job_resubmits,
            history_batch_window_s=settings.history_batch_window_s,
        )

    def protected_by(self, *values: str | None) -> str | None:
        """The first ``PROTECTED_USERS`` entry matching the user's id, email or username.

        Entries are exact ids or emails, or glob patterns (``*@ops.example.com``,
        ``svc-*``); matching ignores case.
        """
        candidates = [v.lower() for v in values if v]
        for pattern in self.protected:
            lowered = pattern.lower()
            if any(fnmatch.fnmatchcase(value, lowered) for value in candidates):
                return pattern
        return None
