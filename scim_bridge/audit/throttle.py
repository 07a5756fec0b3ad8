"""At most one audit event per key every ``AUDIT_THROTTLE_S``: a flood of refusals (bad SCIM or
admin tokens, out-of-scope requests) must not flood the hash chain, each append taking its lock
and a durable commit. Every refusal is still logged; the throttled event says how many it stands
for (``suppressed``)."""

from __future__ import annotations

import threading
import time

AUDIT_THROTTLE_S = 10.0


class FailureThrottle:
    def __init__(self, interval_s: float = AUDIT_THROTTLE_S) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def should_record(self, key: str) -> bool:
        return self.admit(key) is not None

    def admit(self, key: str) -> int | None:
        """None when ``key`` was recorded less than the interval ago (counted as suppressed);
        otherwise how many were suppressed since its last event (the caller records one now)."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self.interval_s) < self.interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            if len(self._last) > 10_000:  # keys carry request data (paths): keep the map bounded
                oldest = sorted(self._last, key=self._last.__getitem__)[:5_000]
                for stale in oldest:
                    self._last.pop(stale, None)
                    self._suppressed.pop(stale, None)
            return self._suppressed.pop(key, 0)
