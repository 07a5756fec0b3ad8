"""Settings from the environment (README "Configuration")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scim_bridge.config import ConfigError, DeleteBreaker, HistorySince, Settings, parse_duration


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///scim-bridge.db"
    # Five years: the longest maximum interaction-data retention an org can set (HELP ?p=278459).
    assert settings.history_since == HistorySince(days=1826)
    assert settings.history_job_poll_s == 10.0
    assert settings.history_job_resubmits == 3
    assert settings.history_batch_window_s == 15.0  # about one async job's run time
    assert Settings.from_env({"HISTORY_BATCH_WINDOW": "0"}).history_batch_window_s == 0.0
    assert settings.sync_budget_s == 10.0
    assert settings.rate_limit_per_minute == 300
    assert settings.ack_mode == "success"
    assert settings.genesys_api_host is None


def test_region_becomes_the_api_host_genesys_api_1_2() -> None:
    settings = Settings.from_env({"GENESYS_REGION": "mypurecloud.ie"})
    assert settings.genesys_api_host == "https://api.mypurecloud.ie"
    assert Settings.from_env({"GENESYS_REGION": "usw2.pure.cloud"}).genesys_api_host == (
        "https://api.usw2.pure.cloud"
    )


def test_an_explicit_api_host_wins_over_the_region() -> None:
    settings = Settings.from_env(
        {"GENESYS_REGION": "mypurecloud.ie", "GENESYS_API_HOST": "http://127.0.0.1:9100/"}
    )
    assert settings.genesys_api_host == "http://127.0.0.1:9100"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("12h", 43200.0), ("30d", 2592000.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_policies_parse() -> None:
    settings = Settings.from_env(
        {
            "PROTECTED_USERS": "ceo@example.com, *@admins.example.com ,",
            "DRY_RUN": "true",
            "DELETE_BREAKER": "25/1h",
            "DELETE_INACTIVE_AFTER": "30d",
            "SCIM_ACK": "strict",
        }
    )
    assert settings.protected_users == ("ceo@example.com", "*@admins.example.com")
    assert settings.dry_run is True
    assert settings.delete_breaker == DeleteBreaker(limit=25, window_s=3600.0)
    assert settings.delete_inactive_after_s == 30 * 86400
    assert settings.ack_mode == "strict"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DELETE_BREAKER", "lots"),
        ("DELETE_INACTIVE_AFTER", "soon"),
        ("DRY_RUN", "maybe"),
        ("SCIM_ACK", "sometimes"),
        ("HISTORY_LOOKBACK_DAYS", "0"),
        ("HISTORY_SINCE", "soon"),
        ("HISTORY_SINCE", "2021-02-30"),
        ("HISTORY_JOB_POLL", "0s"),
        ("HISTORY_JOB_RESUBMITS", "-1"),
        ("HISTORY_BATCH_WINDOW", "a while"),
        ("GENESYS_REGION", "https://api.mypurecloud.ie/api/v2"),
    ],
)
def test_malformed_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env(
        {
            "GENESYS_CLIENT_SECRET": "s3cr3t-value",
            "SCIM_BRIDGE_ADMIN_TOKEN": "adm1n-value-" + "x" * 32,
        }
    )
    assert "s3cr3t-value" not in repr(settings)
    assert "adm1n-value" not in repr(settings)


def test_the_bridge_refuses_to_start_without_credentials() -> None:
    with pytest.raises(ConfigError, match="GENESYS_CLIENT_ID"):
        Settings.from_env({"GENESYS_REGION": "mypurecloud.ie"}).require_genesys()
    Settings.from_env(
        {
            "GENESYS_REGION": "mypurecloud.ie",
            "GENESYS_CLIENT_ID": "id",
            "GENESYS_CLIENT_SECRET": "secret",
        }
    ).require_genesys()


def test_the_rate_limit_window_is_a_minute_unless_told() -> None:
    assert Settings.from_env({}).rate_limit_window_s == 60.0
    assert Settings.from_env({"GENESYS_RATE_LIMIT_WINDOW": "2s"}).rate_limit_window_s == 2.0
    with pytest.raises(ConfigError, match="GENESYS_RATE_LIMIT_WINDOW"):
        Settings.from_env({"GENESYS_RATE_LIMIT_WINDOW": "0s"})


def test_rehire_settings_issue_12() -> None:
    default = Settings.from_env({})
    assert (default.rehire, default.rehire_restore_footprint) == ("restore", False)
    told = Settings.from_env({"REHIRE": "Refuse", "REHIRE_RESTORE_FOOTPRINT": "true"})
    assert (told.rehire, told.rehire_restore_footprint) == ("refuse", True)
    with pytest.raises(ConfigError, match="REHIRE"):
        Settings.from_env({"REHIRE": "sometimes"})
    with pytest.raises(ConfigError, match="REHIRE_RESTORE_FOOTPRINT"):
        Settings.from_env({"REHIRE_RESTORE_FOOTPRINT": "maybe"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5y", HistorySince(days=1826)),
        ("P5Y", HistorySince(days=1826)),
        ("1826d", HistorySince(days=1826)),
        ("P90D", HistorySince(days=90)),
        ("104w", HistorySince(days=728)),
        ("2021-06-01", HistorySince(days=None, date=datetime(2021, 6, 1, tzinfo=UTC))),
    ],
)
def test_history_since_is_a_date_or_a_span_back_from_now(text: str, expected: HistorySince) -> None:
    assert Settings.from_env({"HISTORY_SINCE": text}).history_since == expected


def test_history_since_starts_the_window() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert HistorySince(days=90).start(now) == datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    fixed = HistorySince.parse("2024-01-01")
    assert fixed.start(now) == datetime(2024, 1, 1, tzinfo=UTC)
    assert str(fixed) == "2024-01-01"
    assert str(HistorySince()) == "1826d"


def test_the_older_lookback_setting_still_works() -> None:
    assert Settings.from_env({"HISTORY_LOOKBACK_DAYS": "90"}).history_since == HistorySince(days=90)
    both = {"HISTORY_LOOKBACK_DAYS": "90", "HISTORY_SINCE": "2y"}
    assert Settings.from_env(both).history_since == HistorySince(days=730)


def test_active_conversation_wait_defaults_to_15_minutes_and_is_bounded() -> None:
    """Issue 10: the open access a live conversation may keep is bounded (it was 8 hours)."""
    assert Settings.from_env({}).active_conversation_wait_s == 15 * 60
    assert Settings.from_env({"ACTIVE_CONVERSATION_WAIT": "0"}).active_conversation_wait_s == 0
    assert Settings.from_env({"ACTIVE_CONVERSATION_WAIT": "2h"}).active_conversation_wait_s == 7200
    for bad in ("9h", "soon"):
        with pytest.raises(ConfigError, match="ACTIVE_CONVERSATION_WAIT"):
            Settings.from_env({"ACTIVE_CONVERSATION_WAIT": bad})
