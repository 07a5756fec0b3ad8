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

``take_many`` takes several slots in one transaction for a process to hand out
(``genesys.budget.BatchedBudget``), and commits without waiting for the disk
(``light_write_transaction``): docs/genesys-calls.md says why that keeps the guarantee.

This module knows nothing of Genesys: ``genesys.budget.BatchedBudget`` (or ``SharedBudget``, one
slot a transaction) turns "wait N seconds" into sleeping or ``RateLimited``; ``bootstrap``
connects the two.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from scim_bridge.store.engine import is_sqlite, light_write_transaction, write_transaction
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

    def _ensure_ring(self) -> None:
        if not self._ready:
            try:
                with write_transaction(self._engine) as conn:
                    self._ensure_slots(conn)
            except sa.exc.IntegrityError:
                pass  # another process created the ring at the same moment
            self._ready = True

    def try_take(self, keep: int = 0) -> float:
        """0.0 when a slot was taken now, leaving at least ``keep`` free slots (the share kept
        for deprovisioning, when a read takes), else the seconds until one may be taken."""
        taken, wait, _mark = self.take_many(1, keep)
        return 0.0 if taken else wait

    def take_many(
        self,
        n: int,
        keep: int = 0,
        hold_s: float = 0.0,
        release: Sequence[tuple[int, float]] = (),
    ) -> tuple[list[int], float, float]:
        """Up to ``n`` slots in one transaction, leaving at least ``keep`` free: (their numbers,
        0.0, the time they are marked taken), or ([], the seconds until one frees, 0.0). They
        are marked taken ``hold_s`` from now, the latest moment their holder may use them
        (``genesys.budget.BatchedBudget``), so that each frees a full window after its use,
        whenever in the hold that was. ``release``: (slot, mark) of slots taken earlier and
        never used, freed in the same transaction if they still carry that mark."""
        self._ensure_ring()
        # No fsync for a slot (``light_write_transaction``): a power cut may lose the last few
        # grants, which only makes the next minute's budget look larger than it was (Genesys
        # then answers 429, which the gateway honours); what replicas see of each other's
        # grants, and the locking that keeps them inside the budget together, is unchanged.
        with light_write_transaction(self._engine) as conn:
            sqlite = is_sqlite(conn)
            now = time.time() if sqlite else self._db_now(conn)
            return self._take(conn, n, keep, now, hold_s, release, sqlite=sqlite)

    @staticmethod
    def _db_now(conn: sa.Connection) -> float:
        return float(
            conn.execute(
                sa.select(sa.func.extract("epoch", sa.func.clock_timestamp()))
            ).scalar_one()
        )

    def _take(
        self,
        conn: sa.Connection,
        n: int,
        keep: int,
        now: float,
        hold_s: float,
        release: Sequence[tuple[int, float]],
        *,
        sqlite: bool,
    ) -> tuple[list[int], float, float]:
        ring = sa.and_(slots.c.budget_key == self._key, slots.c.slot < self._per_minute)
        for slot, mark in release:
            # Still this holder's mark: nobody may take a slot within a window of its mark.
            conn.execute(
                slots.update()
                .where(ring, slots.c.slot == slot, slots.c.taken_at == mark)
                .values(taken_at=0.0)
            )
        in_window = sa.and_(ring, slots.c.taken_at > now - self._window_s)
        if keep:
            # Reads leave ``keep`` slots to takers that keep none: room is what the window's
            # grants leave beyond them (counted over this window's grants, an index range, not
            # by skipping ``keep`` free rows). Concurrent takers counting at once may dip into
            # the kept share by a slot each; the budget itself is the rows, locked one by one.
            busy = conn.execute(sa.select(sa.func.count()).where(in_window)).scalar_one()
            room = self._per_minute - keep - int(busy)
            if room <= 0:
                return [], self._wait(conn, in_window, -room, now), 0.0
            n = min(n, room)
        # Free slots: taken at least a window ago. The condition is in the query, not checked
        # on the rows it returns: on PostgreSQL (READ COMMITTED) a row that another taker
        # updated between this statement's snapshot and its lock is returned with its new
        # values, so "the least recently taken rows" could come back just taken. A condition in
        # the WHERE clause is re-checked on the new values, and such a row is skipped.
        free = (
            sa.select(slots.c.slot)
            .where(ring, slots.c.taken_at <= now - self._window_s)
            .order_by(slots.c.taken_at)
            .limit(max(n, 1))
        )
        if not sqlite:
            free = free.with_for_update(skip_locked=True)
        taken = list(conn.execute(free).scalars())
        if taken:
            conn.execute(
                slots.update()
                .where(slots.c.budget_key == self._key, slots.c.slot.in_(taken))
                .values(taken_at=now + hold_s)
            )
            return taken, 0.0, now + hold_s
        return [], self._wait(conn, in_window, 0, now), 0.0

    def _wait(self, conn: sa.Connection, in_window: Any, skip: int, now: float) -> float:
        """Seconds until the window's (``skip``+1)-th oldest grant frees. None in the window
        while none is free: other takers hold the free ones this instant, so look again shortly."""
        oldest = conn.execute(
            sa.select(slots.c.taken_at)
            .where(in_window)
            .order_by(slots.c.taken_at)
            .offset(skip)
            .limit(1)
        ).scalar()
        if oldest is None:
            return 0.05
        return max(float(oldest) + self._window_s - now, 0.05)
