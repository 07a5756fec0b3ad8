"""The Genesys rate budget kept in the database, so that N replicas together stay inside it.

Genesys counts requests per OAuth client (genesys-api.md 5.1: 300 a minute by default). Each
process's in-memory budget would let N replicas spend N times that, so with several processes the
slots live here: a ring of ``per_minute`` rows per budget key, each holding when it was last
taken. Taking a slot is one short transaction: pick the least recently taken slot; if it was
taken more than a window ago, take it now; otherwise say how long until it frees. That is a
sliding log of the last ``per_minute`` grants, the same rule as the gateway's in-memory budget.

PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets concurrent takers each lock a different slot, and
time is the server's (``clock_timestamp()``), so replicas with skewed clocks still agree.
SQLite: ``BEGIN IMMEDIATE`` serialises takers; every process is on one machine and one clock.

This module knows nothing of Genesys: ``genesys.budget.SharedBudget`` turns "wait N seconds"
into sleeping or ``RateLimited``; ``create_app`` connects the two.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from scim_bridge.store.engine import is_sqlite, write_transaction
from scim_bridge.store.schema import rate_budget_slots as slots


class SlotTable:
    def __init__(self, engine: sa.Engine, key: str, per_minute: int, *, window_s: float) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._engine = engine
        self._key = key
        self._per_minute = per_minute
        self._window_s = window_s
        self._ready = False

    def _ensure_slots(self, conn: sa.Connection) -> None:
        """Create the ring once; rows beyond ``per_minute`` (a lowered limit) are ignored."""
        present = set(
            conn.execute(sa.select(slots.c.slot).where(slots.c.budget_key == self._key)).scalars()
        )
        missing = [i for i in range(self._per_minute) if i not in present]
        if missing:
            conn.execute(
                slots.insert(),
                [{"budget_key": self._key, "slot": i, "taken_at": 0.0} for i in missing],
            )

    def try_take(self, keep: int = 0) -> float:
        """0.0 when a slot was taken now, leaving at least ``keep`` free slots (the share kept
        for deprovisioning, when a read takes), else the seconds until one may be taken."""
        if not self._ready:
            try:
                with write_transaction(self._engine) as conn:
                    self._ensure_slots(conn)
            except sa.exc.IntegrityError:
                pass  # another process created the ring at the same moment
            self._ready = True
        with write_transaction(self._engine) as conn:
            sqlite = is_sqlite(conn)
            now = (
                time.time()
                if sqlite
                else float(
                    conn.execute(
                        sa.select(sa.func.extract("epoch", sa.func.clock_timestamp()))
                    ).scalar_one()
                )
            )
            ring = sa.and_(slots.c.budget_key == self._key, slots.c.slot < self._per_minute)
            # A free slot: taken at least a window ago. The condition is in the query, not checked
            # on the row it returns: on PostgreSQL (READ COMMITTED) a row that another taker
            # updated between this statement's snapshot and its lock is returned with its new
            # values, so "the least recently taken row" could come back just taken, and reading
            # its time would report a full window's wait with free slots to spare. A condition
            # in the WHERE clause is re-checked on the new values, and such a row is skipped.
            # With ``keep``, the (keep+1)-th free slot: there is one only when more than ``keep``
            # are free, so the last ``keep`` are left to takers that keep none.
            free = (
                sa.select(slots.c.slot)
                .where(ring, slots.c.taken_at <= now - self._window_s)
                .order_by(slots.c.taken_at)
                .offset(keep)
                .limit(1)
            )
            if not sqlite:
                free = free.with_for_update(skip_locked=True)
            slot = conn.execute(free).scalar()
            if slot is not None:
                conn.execute(
                    slots.update()
                    .where(slots.c.budget_key == self._key, slots.c.slot == slot)
                    .values(taken_at=now)
                )
                return 0.0
            # None free: the wait until the oldest frees. When that one is free already, other
            # takers hold it (and every other free one) this instant: look again shortly.
            oldest = conn.execute(
                sa.select(slots.c.taken_at)
                .where(ring)
                .order_by(slots.c.taken_at)
                .offset(keep)
                .limit(1)
            ).scalar()
            if oldest is None:
                return 0.05
            return max(float(oldest) + self._window_s - now, 0.05)
