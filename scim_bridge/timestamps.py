"""How the bridge writes a moment: ``iso()``, the one helper for it.

The convention: a moment the bridge stores or shows is UTC ISO-8601 text, fixed width, with a
``Z``: ``2026-11-30T11:27:37.123456Z`` (microseconds), so that comparing the text compares the
time (audit events, directory records' ``meta.created``/``lastModified``, tokens, migrations).
Genesys is sent milliseconds (``digits=3``, genesys-api.md). Times the engine computes with (due
times, leases, heartbeats, rate-budget slots, job ages) are seconds since the epoch, a float, and
become text through ``iso(seconds)`` when shown.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime | float | None = None, *, digits: int = 6) -> str:
    """``moment`` (now when None; a float is seconds since the epoch) as UTC ISO-8601 text with
    ``digits`` fractional digits (0 to 6) and a ``Z``. A naive datetime is refused rather than
    guessed."""
    if not 0 <= digits <= 6:
        raise ValueError("digits: 0 to 6")
    if moment is None:
        moment = datetime.now(UTC)
    elif isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("times must be timezone-aware (a naive datetime is not guessed)")
        moment = moment.astimezone(UTC)
    else:
        moment = datetime.fromtimestamp(moment, UTC)
    fraction = f".{moment.microsecond:06d}"[: digits + 1] if digits else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
