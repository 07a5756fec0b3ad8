"""Everything one sandbox holds, behind one lock: the org, the faults, clients and tokens, the
rate budget and the stats. ``reset`` puts it back to a freshly seeded org.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable

from scim_bridge.sandbox.auth import Client, Clients
from scim_bridge.sandbox.config import Faults, SandboxConfig
from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.jobs import AsyncJobs
from scim_bridge.sandbox.org import Org
from scim_bridge.sandbox.ratelimit import RateLimiter
from scim_bridge.sandbox.seed import build_org
from scim_bridge.sandbox.stats import Stats


class SandboxState:
    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.limiter = RateLimiter()
        self.stats = Stats()
        self.users = config.users
        self.seed = config.seed
        self.history_days = config.history_days
        self.org: Org
        self.jobs: AsyncJobs
        self.faults: Faults
        self.clients: Clients
        self._fault_rng: random.Random
        self.reset(config.users, config.seed)

    def reset(self, users: int, seed: int, history_days: int | None = None) -> None:
        """A new org for (users, seed); faults, tokens, stats, jobs and extra clients cleared.
        ``history_days``: how far back its history goes (default: the start-up config's)."""
        with self.lock:
            self.users, self.seed = users, seed
            self.history_days = self.config.history_days if history_days is None else history_days
            self.org = build_org(
                users,
                seed,
                self.clock(),
                self.history_days,
                group_queues=self.config.group_queue_members,
            )
            self.jobs = AsyncJobs()
            self.faults = self.config.default_faults()
            self.org.search_lag_s = self.faults.search_lag_s
            self.clients = Clients(
                Client(self.config.client_id, self.config.client_secret, permissions=None)
            )
            self._fault_rng = random.Random(seed)  # noqa: S311 - reproducible faults
            self.limiter.clear()
            self.stats.clear()

    def set_faults(self, body: dict[str, object]) -> Faults:
        """Apply all of ``body`` or, on a 400, none of it."""
        with self.lock:
            candidate = copy.deepcopy(self.faults)
            candidate.update(body)
            self.faults = candidate
            self.org.search_lag_s = candidate.search_lag_s
            return candidate

    def injected_failure(self, method: str, path: str) -> ApiError | None:
        """The failure a fault asks for on this request, if any (``fail_next`` first)."""
        for rule in self.faults.fail_next:
            if rule.matches(method, path):
                rule.count -= 1
                if rule.count <= 0:
                    self.faults.fail_next.remove(rule)
                headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
                return ApiError(
                    rule.status,
                    f"Injected failure (fail_next) with status {rule.status}",
                    headers=headers,
                )
        rate = self.faults.error_rate
        # error_rate hits the API only; fail_next can target /oauth/token when a test wants it.
        if rate > 0 and path.startswith("/api/") and self._fault_rng.random() < rate:
            return ApiError(
                503,
                "Service Unavailable - The server is currently unavailable (injected error_rate).",
            )
        return None
