"""Counts of what the sandbox answered, for ``GET /sandbox/stats`` (control endpoints excluded)."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._by_endpoint: Counter[tuple[str, int]] = Counter()
        self.rate_limited = 0
        self.tokens_issued = 0

    def clear(self) -> None:
        self._by_endpoint.clear()
        self.rate_limited = 0
        self.tokens_issued = 0

    def record(self, endpoint: str, status: int) -> None:
        self._by_endpoint[(endpoint, status)] += 1
        if status == 429:
            self.rate_limited += 1

    def to_json(self) -> dict[str, Any]:
        endpoints: dict[str, dict[str, int]] = {}
        by_status: Counter[str] = Counter()
        for (endpoint, status), count in sorted(self._by_endpoint.items()):
            endpoints.setdefault(endpoint, {})[str(status)] = count
            by_status[str(status)] += count
        return {
            "total": sum(by_status.values()),
            "rate_limited": self.rate_limited,
            "tokens_issued": self.tokens_issued,
            "by_status": dict(sorted(by_status.items())),
            "endpoints": endpoints,
        }
