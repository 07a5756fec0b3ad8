"""The per-token request budget (genesys-api.md 5.1, 5.2).

A sliding window: a request is allowed when fewer than ``limit`` requests from the same token were
allowed in the last ``window`` seconds. A refused request (429) does not spend budget, so a client
that waits ``Retry-After`` seconds is let through.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    count: int  # requests spent in the current window, this one included when allowed
    reset_s: int  # seconds until the oldest spent request leaves the window

    def headers(self) -> dict[str, str]:
        return {
            "inin-ratelimit-allowed": str(self.limit),
            "inin-ratelimit-count": str(self.count),
            "inin-ratelimit-reset": str(self.reset_s),
        }


class RateLimiter:
    def __init__(self) -> None:
        self._spent: dict[str, deque[float]] = {}

    def clear(self) -> None:
        self._spent.clear()

    def take(self, key: str, now: float, limit: int, window: float) -> Decision:
        spent = self._spent.setdefault(key, deque())
        horizon = now - window
        while spent and spent[0] <= horizon:
            spent.popleft()
        allowed = len(spent) < limit
        if allowed:
            spent.append(now)
        reset = max(1, math.ceil(spent[0] + window - now)) if spent else max(1, math.ceil(window))
        return Decision(allowed, limit, len(spent), reset)

    @staticmethod
    def idle(limit: int, window: float) -> Decision:
        """Headers for a response that spent nothing (no token, a 401)."""
        return Decision(True, limit, 0, max(1, math.ceil(window)))
