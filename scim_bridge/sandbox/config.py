"""Start-up settings of the sandbox and the faults that can be changed while it runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from scim_bridge.sandbox.errors import ApiError


@dataclass
class FailRule:
    """Fail the next ``count`` requests whose method and path match, with ``status``.

    Deterministic, unlike ``error_rate``: a test of a burst of 5xx gets exactly that burst.
    """

    path_prefix: str
    status: int = 503
    count: int = 1
    method: str | None = None  # None matches every method
    retry_after: int | None = None  # sent as a Retry-After header when set

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and path.startswith(self.path_prefix)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Faults:
    """What ``POST /sandbox/faults`` can change. ``GET /sandbox/faults`` shows the current set."""

    rate_limit_per_minute: int = 300
    # The rate budget is per token per window; the window is a minute in Genesys (genesys-api.md
    # 5.1). Tests may shorten it so that a 429 storm and its Retry-After last seconds, not a minute.
    rate_limit_window_s: float = 60.0
    # Token requests have their own budget per client id (client.credentials.token.rate.per.minute).
    token_rate_limit_per_minute: int = 300
    error_rate: float = 0.0
    latency_ms: int = 0
    token_ttl_s: int = 86400
    search_lag_s: float = 0.0
    purge_history_on_delete: bool = False
    # With purge_history_on_delete: purge only conversations that started more than this many
    # days ago (0: all of them), the kind of loss a check over the recent past never sees.
    purge_history_older_than_days: int = 0
    block_deactivation_on_active_conversation: bool = True
    # Whether deactivation and delete also remove routing skills and languages is UNCONFIRMED
    # (genesys-api.md 2.4 names roles only): the stricter reading removes them.
    strip_routing_on_deactivate: bool = True
    # Expand names GET /users/{id} silently leaves out: expands are "resolved with a best effort
    # approach and not guaranteed to be returned" (PYDOCS UsersApi get_user).
    drop_expands: list[str] = field(default_factory=list)
    # Async details jobs (genesys-api.md 4.3; sandbox/jobs.py): how long a job takes, how long its
    # results live, how far the data lake lags now, how many jobs may run at once per org
    # (UNCONFIRMED), and the outcomes the next jobs are forced to (FAILED / EXPIRED / FULFILLED).
    async_job_delay_s: float = 3.0
    async_job_ttl_s: float = 86400.0
    data_availability_lag_s: float = 3600.0
    async_job_concurrency: int = 5
    async_job_outcomes: list[str] = field(default_factory=list)
    fail_next: list[FailRule] = field(default_factory=list)
    # Users whose ``expand=conversationSummary`` comes back without it ("*": everyone). Expands
    # are best effort (PYDOCS get_user), so the bridge must decide without one.
    conversation_summary_missing: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["fail_next"] = [rule.to_json() for rule in self.fail_next]
        return data

    def update(self, body: dict[str, Any]) -> None:
        """Apply a ``POST /sandbox/faults`` body; unknown keys and wrong types are a 400."""
        numbers: dict[str, type] = {
            "rate_limit_per_minute": int,
            "rate_limit_window_s": float,
            "token_rate_limit_per_minute": int,
            "error_rate": float,
            "latency_ms": int,
            "token_ttl_s": int,
            "search_lag_s": float,
            "purge_history_older_than_days": int,
            "async_job_delay_s": float,
            "async_job_ttl_s": float,
            "data_availability_lag_s": float,
            "async_job_concurrency": int,
        }
        flags = (
            "purge_history_on_delete",
            "block_deactivation_on_active_conversation",
            "strip_routing_on_deactivate",
        )
        for key, value in body.items():
            if key in numbers:
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ApiError.bad_request(f"{key} must be a non-negative number")
                setattr(self, key, numbers[key](value))
            elif key in flags:
                if not isinstance(value, bool):
                    raise ApiError.bad_request(f"{key} must be a boolean")
                setattr(self, key, value)
            elif key in _LIST_FAULTS:
                self._set_list(key, _list(value, key))
            else:
                raise ApiError.bad_request(f"unknown fault: {key}")
        if self.error_rate > 1:
            raise ApiError.bad_request("error_rate must be between 0 and 1")

    def _set_list(self, key: str, items: list[Any]) -> None:
        if key == "fail_next":
            self.fail_next = [_fail_rule(item) for item in items]
        elif key == "conversation_summary_missing":
            if not all(isinstance(i, str) and i for i in items):
                raise ApiError.bad_request(f'{key} must be a list of user ids (or "*")')
            self.conversation_summary_missing = list(items)
        elif key == "drop_expands":
            if not all(isinstance(n, str) for n in items):
                raise ApiError.bad_request("drop_expands must be a list of expand names")
            self.drop_expands = [str(n) for n in items]
        else:
            if not all(o in ("FULFILLED", "FAILED", "EXPIRED") for o in items):
                raise ApiError.bad_request(f"{key} items must be FULFILLED, FAILED or EXPIRED")
            self.async_job_outcomes = list(items)


_LIST_FAULTS = ("fail_next", "conversation_summary_missing", "drop_expands", "async_job_outcomes")


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ApiError.bad_request(f"{key} must be a list")
    return value


def _fail_rule(item: Any) -> FailRule:
    if not isinstance(item, dict) or not isinstance(item.get("path_prefix"), str):
        raise ApiError.bad_request("fail_next items need a path_prefix")
    allowed = {"path_prefix", "status", "count", "method", "retry_after"}
    unknown = set(item) - allowed
    if unknown:
        raise ApiError.bad_request(f"unknown fail_next keys: {sorted(unknown)}")
    status = item.get("status", 503)
    count = item.get("count", 1)
    retry_after = item.get("retry_after")
    method = item.get("method")
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ApiError.bad_request("fail_next status must be 400-599")
    if not isinstance(count, int) or count < 1:
        raise ApiError.bad_request("fail_next count must be a positive integer")
    if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
        raise ApiError.bad_request("fail_next retry_after must be a non-negative integer")
    if method is not None and not isinstance(method, str):
        raise ApiError.bad_request("fail_next method must be a string")
    return FailRule(
        path_prefix=item["path_prefix"],
        status=status,
        count=count,
        method=method.upper() if method else None,
        retry_after=retry_after,
    )


@dataclass(frozen=True)
class SandboxConfig:
    """How a sandbox starts; ``POST /sandbox/reset`` returns it to this (with new users/seed)."""

    users: int = 200
    seed: int = 1
    rate_limit_per_minute: int = 300
    token_ttl_s: int = 86400
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"  # noqa: S105 - the sandbox's documented default
    # Fault defaults (genesys-api.md behaviour unless a test asks otherwise).
    rate_limit_window_s: float = 60.0
    error_rate: float = 0.0
    latency_ms: int = 0
    search_lag_s: float = 0.0
    purge_history_on_delete: bool = False
    block_deactivation_on_active_conversation: bool = True
    # Three years of history (sparse before the last 90 days): more than the two years an org
    # keeps by default at the least, so that a proof covering less shows the gap.
    history_days: int = 1095
    async_job_delay_s: float = 3.0
    data_availability_lag_s: float = 3600.0
    # Seed memberBy=group queue memberships (the largest group routed to one queue), which
    # ``DELETE .../members/{userId}`` refuses (the stricter reading, genesys-api.md 3): the
    # bridge's drain records them and never lets them hold a deactivation (issue 10).
    group_queue_members: bool = True

    def default_faults(self) -> Faults:
        return Faults(
            rate_limit_per_minute=self.rate_limit_per_minute,
            rate_limit_window_s=self.rate_limit_window_s,
            error_rate=self.error_rate,
            latency_ms=self.latency_ms,
            token_ttl_s=self.token_ttl_s,
            search_lag_s=self.search_lag_s,
            purge_history_on_delete=self.purge_history_on_delete,
            block_deactivation_on_active_conversation=self.block_deactivation_on_active_conversation,
            async_job_delay_s=self.async_job_delay_s,
            data_availability_lag_s=self.data_availability_lag_s,
        )
