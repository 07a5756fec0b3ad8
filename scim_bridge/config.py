"""Settings from the environment, parsed and checked once, at start-up.

Every setting the bridge reads is here, so that the README's configuration table can be checked
against one place. Nothing else reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///scim-bridge.db"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_TRUE = {"1", "true", "yes", "on"}
# SCIM_BRIDGE_ADMIN_TOKEN and AUDIT_HMAC_KEY: at least this many characters (a guessable admin
# token is a guessable operator; a short key makes the keyed chain recomputable).
MIN_SECRET_LENGTH = 32
_FALSE = {"0", "false", "no", "off", ""}


DEFAULT_ACTIVE_CONVERSATION_WAIT_S = 15 * 60.0
MAX_ACTIVE_CONVERSATION_WAIT_S = 8 * 3600.0


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable and what it expects."""


def parse_duration(text: str, *, name: str = "duration") -> float:
    """``"30d"`` -> 2592000.0; a bare number is seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{name}: expected a duration such as 90s, 10m, 12h or 30d, got {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def parse_bool(text: str, *, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}: expected true or false, got {text!r}")


def _fraction(text: str, *, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}: expected a fraction such as 0.2, got {text!r}") from None
    if not 0 <= value <= 0.9:
        raise ConfigError(f"{name}: expected 0 to 0.9, got {text!r}")
    return value


def _positive_int(text: str, *, name: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"{name}: expected a positive integer, got {text!r}")
    return int(text)


@dataclasses.dataclass(frozen=True)
class DeleteBreaker:
    """More than ``limit`` deletes within ``window_s`` seconds: further deletes wait for a person."""

    limit: int
    window_s: float

    @classmethod
    def parse(cls, text: str) -> DeleteBreaker:
        count, sep, window = text.partition("/")
        if not sep or not count.strip().isdigit():
            raise ConfigError(f"DELETE_BREAKER: expected N/WINDOW such as 25/1h, got {text!r}")
        return cls(int(count), parse_duration(window, name="DELETE_BREAKER window"))


_SPAN = re.compile(r"^\s*P?(\d+)\s*([DWY])\s*$", re.IGNORECASE)
_DATE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*$")


@dataclasses.dataclass(frozen=True)
class HistorySince:
    """Where the history proof's window starts (``HISTORY_SINCE``): a fixed date (``2021-06-01``,
    UTC midnight), or a span back from now (``5y``, ``1826d``, ``260w``, or ISO 8601 ``P5Y``).

    The default, five years, is the longest "maximum interaction data retention time" an org can
    set; without one, Genesys keeps conversation detail data for the life of the contract
    (HELP "Retention period for analytics data and recording", help.mypurecloud.com/?p=278459).
    A year is 365.25 days, rounded down (``5y`` = 1826 days).
    """

    days: int | None = 1826
    date: datetime | None = None

    def start(self, now: datetime) -> datetime:
        if self.date is not None:
            return self.date
        return now - timedelta(days=self.days or 0)

    def __str__(self) -> str:
        return self.date.date().isoformat() if self.date is not None else f"{self.days}d"

    @classmethod
    def parse(cls, text: str, *, name: str = "HISTORY_SINCE") -> HistorySince:
        if date := _DATE.match(text):
            try:
                moment = datetime.fromisoformat(date.group(1)).replace(tzinfo=UTC)
            except ValueError:
                raise ConfigError(f"{name}: not a calendar date: {text!r}") from None
            return cls(days=None, date=moment)
        span = _SPAN.match(text)
        if not span:
            raise ConfigError(
                f"{name}: expected a date (2021-06-01) or a span back from now (5y, 1826d, 260w, "
                f"P5Y), got {text!r}"
            )
        count, unit = int(span.group(1)), span.group(2).upper()
        days = count * {"D": 1, "W": 7}[unit] if unit != "Y" else int(count * 365.25)
        if not 1 <= days <= 36525:
            raise ConfigError(f"{name}: expected 1 day to 100 years, got {text!r}")
        return cls(days=days)


DEFAULT_HISTORY_SINCE = HistorySince()


def region_api_host(region: str) -> str:
    """``mypurecloud.ie`` -> ``https://api.mypurecloud.ie`` (genesys-api.md 1.2)."""
    region = region.strip().removeprefix("https://").removeprefix("api.").strip("/")
    if not region or "/" in region:
        raise ConfigError(
            f"GENESYS_REGION: expected a domain such as mypurecloud.ie, got {region!r}"
        )
    return f"https://api.{region}"


@dataclasses.dataclass(frozen=True)
class Settings:
    genesys_api_host: str | None = None
    genesys_client_id: str | None = None
    genesys_client_secret: str | None = dataclasses.field(default=None, repr=False)
    database_url: str = DEFAULT_DATABASE_URL
    admin_token: str | None = dataclasses.field(default=None, repr=False)
    protected_users: tuple[str, ...] = ()
    dry_run: bool = False
    delete_breaker: DeleteBreaker | None = None
    delete_inactive_after_s: float | None = None
    history_since: HistorySince = DEFAULT_HISTORY_SINCE
    history_job_poll_s: float = 10.0
    history_job_resubmits: int = 3
    # ACTIVE_CONVERSATION_WAIT: how long a deactivation waits for a live conversation to end
    # before access is cut anyway (sessions revoked; the deactivation as soon as Genesys allows).
    # 15 minutes: most calls and their wrap-up end within it, and it bounds the open access a
    # leaver keeps (it was 8 hours). docs/deprovisioning.md says what it trades.
    active_conversation_wait_s: float = DEFAULT_ACTIVE_CONVERSATION_WAIT_S
    # How long the worker gathers the users reaching verify_before into one async job (issue 11).
    history_batch_window_s: float = 15.0
    sync_budget_s: float = 10.0
    ack_mode: str = "success"  # or "strict" (SCIM_ACK)
    rate_limit_per_minute: int = 300
    # The window Genesys counts ``rate_limit_per_minute`` over (a minute). A shorter one is for a
    # sandbox whose window was shortened (its ``rate_limit_window_s`` fault).
    rate_limit_window_s: float = 60.0
    genesys_connect_timeout_s: float = 5.0
    genesys_read_timeout_s: float = 30.0
    worker_in_process: bool = True
    log_level: str = "INFO"
    # POST /Users with the email of a user Genesys holds as deleted: restore that user (same id)
    # or refuse (409), REHIRE; restore the footprint from the tombstone too,
    # REHIRE_RESTORE_FOOTPRINT (issue 12).
    rehire: str = "restore"
    rehire_restore_footprint: bool = False
    # AUDIT_HMAC_KEY: the audit chain is keyed (HMAC-SHA256) when set (docs/audit.md).
    audit_hmac_key: bytes | None = dataclasses.field(default=None, repr=False)
    # AUDIT_HEAD_LOG_INTERVAL: how often the serving process logs the audit head (0: never).
    audit_head_log_interval_s: float = 300.0
    # GENESYS_DEPROVISION_RESERVE: the share of the rate budget SCIM reads may not take, kept
    # for deprovisioning (0 to 0.9).
    deprovision_reserve: float = 0.2
    # SCIM_REQUEST_DEADLINE: every Genesys call a SCIM request's directory work makes ends by it.
    request_deadline_s: float = 30.0
    # SCIM_MAX_GENESYS_CALLS: the directory calls one SCIM request may make (more: 400 tooMany).
    max_genesys_calls: int = 30
    # SCIM_BRIDGE_PUBLIC_URL: the base URL IdPs reach the bridge at (meta.location, Location);
    # None: the bridge's own address as the WSGI server reports it (never the Host header).
    public_url: str | None = None

    def __post_init__(self) -> None:
        if self.admin_token is not None and len(self.admin_token) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"SCIM_BRIDGE_ADMIN_TOKEN: at least {MIN_SECRET_LENGTH} characters are required "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        if self.audit_hmac_key is not None and len(self.audit_hmac_key) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"AUDIT_HMAC_KEY: at least {MIN_SECRET_LENGTH} characters are required"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        return cls(
            **_genesys_settings(env),
            **_deprovision_settings(env),
            **_service_settings(env),
        )

    def require_genesys(self) -> None:
        """The bridge refuses to start without a Genesys host and credentials (DESIGN.md)."""
        missing = [
            name
            for name, value in (
                ("GENESYS_REGION or GENESYS_API_HOST", self.genesys_api_host),
                ("GENESYS_CLIENT_ID", self.genesys_client_id),
                ("GENESYS_CLIENT_SECRET", self.genesys_client_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigError("missing configuration: " + ", ".join(missing))


def _conversation_wait(text: str | None) -> float:
    if text is None:
        return DEFAULT_ACTIVE_CONVERSATION_WAIT_S
    wait = parse_duration(text, name="ACTIVE_CONVERSATION_WAIT")
    if wait > MAX_ACTIVE_CONVERSATION_WAIT_S:
        raise ConfigError("ACTIVE_CONVERSATION_WAIT: at most 8h (the open access it allows)")
    return wait


class _Env:
    """The environment as settings read it: an empty value is no value."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(name)
        return value if value not in (None, "") else None

    def duration(self, name: str, default: str) -> float:
        return parse_duration(self.get(name) or default, name=name)

    def flag(self, name: str, default: str) -> bool:
        return parse_bool(self.get(name) or default, name=name)

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = (self.get(name) or default).lower()
        if value not in options:
            raise ConfigError(f"{name}: expected {' or '.join(options)}, got {value!r}")
        return value


def _genesys_settings(env: _Env) -> dict[str, Any]:
    """Where Genesys is, how to sign in, and the rate budget it sets."""
    host = env.get("GENESYS_API_HOST")
    region = env.get("GENESYS_REGION")
    if host is None and region is not None:
        host = region_api_host(region)
    window = env.duration("GENESYS_RATE_LIMIT_WINDOW", "60s")
    if window <= 0:
        raise ConfigError("GENESYS_RATE_LIMIT_WINDOW: expected a positive duration")
    return {
        "genesys_api_host": host.rstrip("/") if host else None,
        "genesys_client_id": env.get("GENESYS_CLIENT_ID"),
        "genesys_client_secret": env.get("GENESYS_CLIENT_SECRET"),
        "rate_limit_per_minute": int(env.get("GENESYS_RATE_LIMIT_PER_MINUTE") or 300),
        "rate_limit_window_s": window,
        "genesys_connect_timeout_s": env.duration("GENESYS_CONNECT_TIMEOUT", "5"),
        "genesys_read_timeout_s": env.duration("GENESYS_READ_TIMEOUT", "30"),
        "deprovision_reserve": _fraction(
            env.get("GENESYS_DEPROVISION_RESERVE") or "0.2", name="GENESYS_DEPROVISION_RESERVE"
        ),
    }


def _deprovision_settings(env: _Env) -> dict[str, Any]:
    """Policies, the history proof and re-hire (docs/deprovisioning.md)."""
    breaker = env.get("DELETE_BREAKER")
    inactive_after = env.get("DELETE_INACTIVE_AFTER")
    since, poll, resubmits, gather = _history_settings(env.get)
    if poll <= 0:
        raise ConfigError("HISTORY_JOB_POLL: expected a positive duration")
    return {
        "protected_users": tuple(
            p.strip() for p in (env.get("PROTECTED_USERS") or "").split(",") if p.strip()
        ),
        "dry_run": env.flag("DRY_RUN", "false"),
        "delete_breaker": DeleteBreaker.parse(breaker) if breaker else None,
        "delete_inactive_after_s": (
            parse_duration(inactive_after, name="DELETE_INACTIVE_AFTER") if inactive_after else None
        ),
        "history_since": since,
        "history_job_poll_s": poll,
        "history_job_resubmits": resubmits,
        "active_conversation_wait_s": _conversation_wait(env.get("ACTIVE_CONVERSATION_WAIT")),
        "history_batch_window_s": gather,
        "rehire": env.choice("REHIRE", "restore", ("restore", "refuse")),
        "rehire_restore_footprint": env.flag("REHIRE_RESTORE_FOOTPRINT", "false"),
    }


def _service_settings(env: _Env) -> dict[str, Any]:
    """The SCIM service, its storage, the audit trail and the process."""
    hmac_key = env.get("AUDIT_HMAC_KEY")
    return {
        "database_url": env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        "admin_token": env.get("SCIM_BRIDGE_ADMIN_TOKEN"),
        "sync_budget_s": env.duration("SCIM_SYNC_BUDGET_S", "10"),
        "ack_mode": env.choice("SCIM_ACK", "success", ("success", "strict")),
        "worker_in_process": env.flag("SCIM_BRIDGE_IN_PROCESS_WORKER", "true"),
        "log_level": (env.get("LOG_LEVEL") or "INFO").upper(),
        "audit_hmac_key": hmac_key.encode("utf-8") if hmac_key else None,
        "audit_head_log_interval_s": env.duration("AUDIT_HEAD_LOG_INTERVAL", "5m"),
        "public_url": _public_url(env.get("SCIM_BRIDGE_PUBLIC_URL")),
        "request_deadline_s": env.duration("SCIM_REQUEST_DEADLINE", "30"),
        "max_genesys_calls": _positive_int(
            env.get("SCIM_MAX_GENESYS_CALLS") or "30", name="SCIM_MAX_GENESYS_CALLS"
        ),
    }


def _public_url(text: str | None) -> str | None:
    if text is None:
        return None
    url = text.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", url):
        raise ConfigError(
            "SCIM_BRIDGE_PUBLIC_URL: expected an absolute http(s) URL such as "
            f"https://scim.example.com, got {url!r}"
        )
    return url


def _history_settings(
    get: Callable[[str], str | None],
) -> tuple[HistorySince, float, int, float]:
    """``HISTORY_SINCE`` (or the older ``HISTORY_LOOKBACK_DAYS``, a number of days),
    ``HISTORY_JOB_POLL``, ``HISTORY_JOB_RESUBMITS`` and ``HISTORY_BATCH_WINDOW``."""
    since_text = get("HISTORY_SINCE")
    lookback = get("HISTORY_LOOKBACK_DAYS")  # the older setting: a number of days
    if since_text is None and lookback is not None:
        if not lookback.strip().isdigit():
            raise ConfigError(f"HISTORY_LOOKBACK_DAYS: expected a number of days, got {lookback!r}")
        since_text = f"{lookback.strip()}d"
    since = (
        HistorySince.parse(
            since_text,
            name="HISTORY_SINCE" if get("HISTORY_SINCE") else "HISTORY_LOOKBACK_DAYS",
        )
        if since_text
        else DEFAULT_HISTORY_SINCE
    )
    poll = parse_duration(get("HISTORY_JOB_POLL") or "10s", name="HISTORY_JOB_POLL")
    resubmits = get("HISTORY_JOB_RESUBMITS") or "3"
    if not resubmits.isdigit():
        raise ConfigError(f"HISTORY_JOB_RESUBMITS: expected 0 or more, got {resubmits!r}")
    gather = parse_duration(get("HISTORY_BATCH_WINDOW") or "15s", name="HISTORY_BATCH_WINDOW")
    if gather < 0:
        raise ConfigError("HISTORY_BATCH_WINDOW: expected 0 or a positive duration")
    return since, poll, int(resubmits), gather
