"""``iso()``: one way to write a moment (scim_bridge/timestamps.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from scim_bridge.audit.chain import parse_at
from scim_bridge.timestamps import iso

PACKAGE = Path(__file__).resolve().parents[1] / "scim_bridge"
STORED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_a_stored_time_is_utc_with_microseconds_and_a_z() -> None:
    moment = datetime(2026, 1, 31, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert iso(moment) == "2026-01-31T12:00:00.123456Z"
    assert STORED.match(iso())
    assert parse_at(iso(moment)) == moment  # the audit trail reads back what iso() wrote


def test_seconds_since_the_epoch_and_genesys_milliseconds() -> None:
    assert iso(0.0) == "1970-01-01T00:00:00.000000Z"
    assert iso(1_800_000_000.25, digits=3) == "2027-01-15T08:00:00.250Z"
    assert iso(datetime(2026, 5, 1, 9, 30, 1, 999999, tzinfo=UTC), digits=0) == (
        "2026-05-01T09:30:01Z"
    )


def test_a_naive_time_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        iso(datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="digits"):
        iso(digits=7)


def test_no_other_module_formats_iso_times_itself() -> None:
    """The sandbox plays Genesys and imports nothing of the bridge, so it keeps its own
    (Genesys's millisecond format)."""
    exempt = ("timestamps.py", "sandbox/")
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if not str(path.relative_to(PACKAGE)).startswith(exempt)
        and re.search(r'strftime\("%Y-%m-%dT', path.read_text())
    ]
    assert offenders == []
