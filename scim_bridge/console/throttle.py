"""Failed console sign-ins, throttled per client address and overall.

Every failed sign-in is a row (table ``console_sign_in_failures``: the address and the time),
kept for ``window_s``. Before a token is even looked at, the sign-in is refused (429, with when
to try again) if its address has ``per_address`` failures in the window, or all addresses
together have ``overall``. The rows live in the database, so every gunicorn worker and replica
counts the same failures; two racing processes may let a failure or two more through, no more.

Operator tokens are 256 random bits, so guessing one is hopeless either way; the throttle keeps a
flood of wrong tokens from costing a hash-chain append each (every checked failure is audited,
and there can be at most ``overall`` of those in a window) and shows an operator who pasted the
wrong thing what is going on. A signed-in session is never affected.
"""

from __future__ import annotations

import dataclasses
import time

import sqlalchemy as sa

from scim_bridge.store.engine import write_transaction
from scim_bridge.store.schema import console_sign_in_failures as failures

MAX_ADDRESS = 64


@dataclasses.dataclass(frozen=True)
class SignInLimits:
    per_address: int = 10
    overall: int = 100
    window_s: float = 900.0


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a sign-in is not even tried: whose limit (``address`` or ``overall``), the count in
    the window, and the epoch time from which a sign-in will be tried again."""

    limit: str
    failures: int
    retry_at: float

    def retry_after_s(self, now: float) -> int:
        return max(int(self.retry_at - now) + 1, 1)


class SignInThrottle:
    def __init__(self, engine: sa.Engine, limits: SignInLimits) -> None:
        self.engine = engine
        self.limits = limits

    def refusal(self, address: str, *, now: float | None = None) -> Refusal | None:
        """A ``Refusal`` if a sign-in from ``address`` must not be tried now, else None."""
        now = time.time() if now is None else now
        since = now - self.limits.window_s
        address = address[:MAX_ADDRESS]
        with self.engine.connect() as conn:
            for limit, count, where in (
                ("address", self.limits.per_address, failures.c.address == address),
                ("overall", self.limits.overall, sa.true()),
            ):
                # The count-th newest failure in the window: when it ages out, the count is
                # under the limit again. An index range scan of at most ``count`` rows.
                nth = conn.execute(
                    sa.select(failures.c.at)
                    .where(where, failures.c.at > since)
                    .order_by(failures.c.at.desc())
                    .limit(1)
                    .offset(count - 1)
                ).scalar()
                if nth is not None:
                    return Refusal(limit, count, float(nth) + self.limits.window_s)
        return None

    def failed(self, address: str, *, now: float | None = None) -> None:
        """Count a failed sign-in from ``address`` (and forget those out of the window)."""
        now = time.time() if now is None else now
        with write_transaction(self.engine) as conn:
            conn.execute(failures.delete().where(failures.c.at <= now - self.limits.window_s))
            conn.execute(failures.insert().values(address=address[:MAX_ADDRESS], at=now))

    def succeeded(self, address: str) -> None:
        """A sign-in from ``address`` worked: its earlier failures (a mistyped paste) are
        forgotten, so they do not count against the next person at that address."""
        with write_transaction(self.engine) as conn:
            conn.execute(failures.delete().where(failures.c.address == address[:MAX_ADDRESS]))
