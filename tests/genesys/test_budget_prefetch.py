"""``BatchedBudget(prefetch=True)``: while calls keep coming, the next batch of slots is taken from
the database by the budget's own thread before the hand is empty, so that a call rarely waits for
that transaction; every slot handed out was still granted by the database, and one never used is
given back (docs/genesys-calls.md "What is remembered")."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from scim_bridge.genesys.budget import BatchedBudget


class FakeSlots:
    """``SlotTable.take_many`` over an unlimited ring: numbered grants, who asked, what came back."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.granted: list[int] = []
        self.released: list[tuple[int, float]] = []
        self.callers: list[str] = []
        self._lock = threading.Lock()

    def take_many(
        self, n: int, keep: int, hold_s: float, release: Sequence[tuple[int, float]]
    ) -> tuple[list[int], float, float]:
        time.sleep(self.delay_s)  # the transaction
        with self._lock:
            self.callers.append(threading.current_thread().name)
            self.released.extend(release)
            first = len(self.granted)
            taken = list(range(first, first + n))
            self.granted.extend(taken)
            return taken, 0.0, time.monotonic() + hold_s


def test_a_steady_stream_of_calls_rarely_waits_for_the_database() -> None:
    slots = FakeSlots(delay_s=0.003)
    budget = BatchedBudget(100_000, slots.take_many, prefetch=True)
    waited = []
    for _ in range(300):
        waited.append(budget.acquire(time.monotonic() + 5))
        time.sleep(0.001)
    on_request_path = [c for c in slots.callers if c != "rate-budget-prefetch"]
    assert len(on_request_path) <= 5, slots.callers  # the first calls, before a stream is seen
    assert len(slots.callers) - len(on_request_path) >= 15  # batches came from the prefetch
    assert sorted(waited)[285] < 0.002  # p95: no transaction on the way
    assert len(slots.granted) >= 300  # every call was handed a slot the database granted


def test_without_prefetch_every_batch_is_taken_by_a_call() -> None:
    slots = FakeSlots()
    budget = BatchedBudget(100_000, slots.take_many)
    for _ in range(100):
        budget.acquire(time.monotonic() + 5)
        time.sleep(0.001)
    assert set(slots.callers) == {threading.current_thread().name}


def test_prefetched_slots_never_used_are_given_back() -> None:
    slots = FakeSlots()
    budget = BatchedBudget(100_000, slots.take_many, hold_s=0.05, prefetch=True)
    for _ in range(40):
        budget.acquire(time.monotonic() + 5)
    time.sleep(0.2)  # the stream stops; what is held outlives its hold
    budget.acquire(time.monotonic() + 5)  # the next batch gives them back
    # Every slot granted was either handed to one of the 41 calls or given back, never lost.
    assert len(slots.released) == len(slots.granted) - 41
    assert {slot for slot, _ in slots.released} <= set(slots.granted)
