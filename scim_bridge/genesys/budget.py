"""The client-side rate budget, and the pressure Genesys reports back.

Genesys allows 300 requests a minute per token (genesys-api.md 5.1) and answers the rest with
429. The bridge spends a budget instead of living on 429s: every API request first takes a slot
from a :class:`RateBudget`. The Protocol is deliberately one method, so that a later
database-backed budget shared by replicas can stand in for :class:`SlidingWindowBudget`.

:class:`Backpressure` is the other direction: when Genesys says stop (a 429's ``Retry-After``, or
``inin-ratelimit-count`` reaching ``inin-ratelimit-allowed``), every thread of the gateway holds
off until then, not only the one that was told.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

from scim_bridge.genesys.errors import RateLimited

_log = logging.getLogger(__name__)


def _refuse_past(budget: str, now: float, wait: float, deadline: float) -> None:
    """``RateLimited`` when the next slot, ``wait`` seconds from ``now``, comes after ``deadline``
    (the caller then sleeps ``wait`` and tries again)."""
    if now + wait > deadline:
        raise RateLimited(
            f"{budget} spent; next slot in {wait:.1f}s is past the deadline", retry_after_s=wait
        )


# Calls made inside ``reads()`` may not take the share of the budget kept for deprovisioning
# (``GENESYS_DEPROVISION_RESERVE``): a burst of SCIM reads (an IdP import, a hostile token) must
# never leave a deactivation waiting for the next minute.
_READS: contextvars.ContextVar[bool] = contextvars.ContextVar("scim_bridge_reads", default=False)


@contextlib.contextmanager
def reads() -> Iterator[None]:
    """Mark the Genesys calls made inside as reads (they leave the reserve alone)."""
    token = _READS.set(True)
    try:
        yield
    finally:
        _READS.reset(token)


def reserved_slots(per_minute: int, fraction: float) -> int:
    """How many slots a read must leave free: 0 outside ``reads()``."""
    if not _READS.get() or fraction <= 0:
        return 0
    return min(int(per_minute * fraction), per_minute - 1)


WINDOW_S = 60.0
# Never hold longer than this on the strength of a response header alone.
MAX_HEADER_HOLD_S = 60.0


class RateBudget(Protocol):
    def acquire(self, deadline: float) -> float:
        """Take one request slot, waiting for one if needed; the seconds waited.

        ``deadline`` is a ``time.monotonic()`` value. Raises ``RateLimited`` (with
        ``retry_after_s``) without waiting when no slot frees up before it.
        """
        ...


class SlidingWindowBudget:
    """At most ``per_minute`` acquisitions in any 60-second window, in this process.

    A sliding log rather than a token bucket: a bucket of ``per_minute`` tokens lets through up to
    twice that in the first minute (full bucket plus refill), which a server counting per window
    would answer with 429s. Thread-safe; memory is one timestamp per slot.

    A slot is reused ``margin_s`` after the window, not at its end: a request granted here reaches
    Genesys some milliseconds later, and two requests one window apart here may arrive less than
    one window apart there (the first delayed, the second not) and be counted in one window.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        window_s: float = WINDOW_S,
        margin_s: float | None = None,
        reserve: float = 0.0,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.reserve = reserve
        # The slot lifetime: the window, plus a margin for transit jitter (1 s of a minute).
        self.window_s = window_s + (window_s / 60.0 if margin_s is None else margin_s)
        self._granted: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self, deadline: float) -> float:
        started = time.monotonic()
        keep = reserved_slots(self.per_minute, self.reserve)
        while True:
            with self._lock:
                now = time.monotonic()
                horizon = now - self.window_s
                while self._granted and self._granted[0] <= horizon:
                    self._granted.popleft()
                if len(self._granted) < self.per_minute - keep:
                    self._granted.append(now)
                    return now - started
                # The grant whose expiry brings the count under the limit (the reserve counted).
                index = min(len(self._granted) - (self.per_minute - keep), len(self._granted) - 1)
                wait = self._granted[index] + self.window_s - now
            _refuse_past(f"client-side rate budget of {self.per_minute}/min", now, wait, deadline)
            # Sleep outside the lock; re-check, as other threads may take the slot first.
            time.sleep(wait)


class Backpressure:
    """A shared "not before" time, set from what Genesys answers."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(self._until - time.monotonic(), 0.0)

    def wait(self, deadline: float) -> float:
        """Sleep out a hold; ``RateLimited`` instead when it outlasts ``deadline``."""
        wait = self.remaining()
        if wait <= 0:
            return 0.0
        if time.monotonic() + wait > deadline:
            raise RateLimited(
                f"Genesys asked to slow down for {wait:.1f}s, past the deadline",
                retry_after_s=wait,
            )
        time.sleep(wait)
        return wait

    def observe(self, headers: Mapping[str, str]) -> None:
        """Hold until the window resets once Genesys counts the budget as spent.

        ``inin-ratelimit-allowed`` / ``-count`` / ``-reset`` (seconds) are on every response
        (genesys-api.md 5.2).
        """
        try:
            allowed = int(headers["inin-ratelimit-allowed"])
            count = int(headers["inin-ratelimit-count"])
            reset = float(headers["inin-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        if allowed > 0 and count >= allowed:
            self.hold(min(reset, MAX_HEADER_HOLD_S))


class SharedBudget:
    """A budget whose slots are kept elsewhere (the database, shared by every replica).

    ``try_take(keep)`` takes a slot, leaving at least ``keep`` free, and returns 0.0, or returns
    the seconds until one frees; this class does the waiting, within the caller's deadline,
    exactly as :class:`SlidingWindowBudget` does. ``reserve``: the share reads leave free.
    """

    def __init__(
        self, per_minute: int, try_take: Callable[[int], float], *, reserve: float = 0.0
    ) -> None:
        self.per_minute = per_minute
        self.reserve = reserve
        self._try_take = try_take

    def acquire(self, deadline: float) -> float:
        started = time.monotonic()
        keep = reserved_slots(self.per_minute, self.reserve)
        while True:
            wait = self._try_take(keep)
            now = time.monotonic()
            if wait <= 0:
                return now - started
            _refuse_past(f"shared rate budget of {self.per_minute}/min", now, wait, deadline)
            time.sleep(wait)


# A slot taken from the database in a batch must be used within this long (it is marked taken
# at the end of it, so that it frees a full window after its use: store/rate_budget.py).
HOLD_S = 0.5
MAX_BATCH = 16

# (n, keep, hold_s, release: (slot, mark) pairs) -> (slots, wait, their mark)
TakeMany = Callable[[int, int, float, Sequence[tuple[int, float]]], tuple[list[int], float, float]]


class BatchedBudget:
    """:class:`SharedBudget`'s rule, with slots taken from the database a few at a time.

    One transaction per Genesys call is most of a read's cost in the bridge (a write lock, and
    on SQLite a commit). Here a process takes as many slots as it used in the last ``hold_s``
    (at least one, at most ``max_batch``) in one transaction and hands them to its threads; a
    slot not used within ``hold_s`` is given back with the next batch (it was never spent). The
    database stays the arbiter: every slot handed out was granted there, marked taken until the
    end of its hold, so replicas together still never exceed the budget in any window; a
    process holds at most ``max_batch`` slots (twice that while a prefetched batch arrives)
    for at most ``hold_s``. ``take_many(n, keep, hold_s, release)``: ``SlotTable.take_many``.

    ``prefetch``: while calls keep coming (two or more in the last ``hold_s``), the next batch
    is taken by a thread of the budget's own when the hand runs low (a quarter of a batch
    left), so that a call waits for the database's transaction (2-4 ms on SQLite: it writes)
    only when the hand is empty: at the first call, after a pause, or in a burst beyond what
    the last half second used. Without it every ``max_batch``-th call pays that transaction,
    which is most of a SCIM read's p99 in the bridge (``bench/scim_read.py``).
    """

    def __init__(
        self,
        per_minute: int,
        take_many: TakeMany,
        *,
        reserve: float = 0.0,
        hold_s: float = HOLD_S,
        max_batch: int = MAX_BATCH,
        clock: Callable[[], float] = time.monotonic,
        prefetch: bool = False,
    ) -> None:
        self.per_minute = per_minute
        self.reserve = reserve
        self.hold_s = hold_s
        self.max_batch = max_batch
        self._take_many = take_many
        self._clock = clock
        # keep -> (in-process end of hold, slot, its mark in the database)
        self._held: dict[int, collections.deque[tuple[float, int, float]]] = {}
        self._expired: list[tuple[int, float]] = []
        self._recent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._prefetch = prefetch
        self._wanted: set[int] = set()  # keeps whose hand runs low
        self._wake = threading.Event()
        self._refiller: threading.Thread | None = None
        self._closed = False

    def _batch(self) -> int:
        return min(max(len(self._recent), 1), self.max_batch)

    def _expire(self, held: collections.deque[tuple[float, int, float]], now: float) -> None:
        while held and held[0][0] <= now:
            _, slot, mark = held.popleft()
            self._expired.append((slot, mark))

    def _from_hand(self, keep: int, now: float) -> tuple[bool, int, list[tuple[int, float]]]:
        """(a held slot was taken, the batch to ask for otherwise, slots to give back)."""
        with self._lock:
            self._recent.append(now)
            while self._recent and self._recent[0] <= now - self.hold_s:
                self._recent.popleft()
            held = self._held.setdefault(keep, collections.deque())
            self._expire(held, now)
            if held:
                held.popleft()
                if self._prefetch and len(self._recent) > 1 and len(held) <= self._batch() // 4:
                    self._wanted.add(keep)
                    self._wake.set()
                return True, 0, []
            give_back, self._expired = self._expired, []
            return False, self._batch(), give_back

    def _hold(self, keep: int, until: float, mark: float, slots: Sequence[int]) -> None:
        with self._lock:
            held = self._held.setdefault(keep, collections.deque())
            late = bool(held) and held[-1][0] > until
            held.extend((until, slot, mark) for slot in slots)
            if late:  # a batch taken concurrently ends its hold earlier: hand it out first
                self._held[keep] = collections.deque(sorted(held))

    def acquire(self, deadline: float) -> float:
        started = self._clock()
        keep = reserved_slots(self.per_minute, self.reserve)
        while True:
            now = self._clock()
            handed, batch, give_back = self._from_hand(keep, now)
            if handed:
                self._ensure_refiller()
                return now - started
            taken, wait, mark = self._take_many(batch, keep, self.hold_s, give_back)
            if taken:
                # From before the transaction: the database's mark is no earlier than this.
                if len(taken) > 1:
                    self._hold(keep, now + self.hold_s, mark, taken[1:])
                return self._clock() - started
            now = self._clock()
            _refuse_past(f"shared rate budget of {self.per_minute}/min", now, wait, deadline)
            time.sleep(wait)

    # --- prefetch ------------------------------------------------------------------------
    def close(self) -> None:
        """Stop prefetching, after a batch in flight, before the database is disposed."""
        self._closed = True
        self._prefetch = False
        self._wake.set()
        refiller = self._refiller
        if refiller is not None and refiller is not threading.current_thread():
            refiller.join(timeout=5)

    def _ensure_refiller(self) -> None:
        """Start the refilling thread in the process that serves (not in ``create_app``:
        gunicorn's ``preload_app`` forks after it, and a thread does not survive a fork)."""
        if self._closed or not self._wake.is_set():
            return
        refiller = self._refiller
        if refiller is not None and refiller.is_alive():
            return
        with self._lock:
            if self._refiller is None or not self._refiller.is_alive():
                self._refiller = threading.Thread(
                    target=self._refill_forever, name="rate-budget-prefetch", daemon=True
                )
                self._refiller.start()

    def _refill_forever(self) -> None:
        while True:
            self._wake.wait()
            if self._closed:
                return
            with self._lock:
                self._wake.clear()
                wanted, self._wanted = self._wanted, set()
            for keep in wanted:
                try:
                    self._refill(keep)
                except Exception:  # the next call takes its slot itself; log and go on
                    _log.warning("rate budget prefetch failed", exc_info=True)

    def _refill(self, keep: int) -> None:
        now = self._clock()
        with self._lock:
            held = self._held.setdefault(keep, collections.deque())
            self._expire(held, now)
            batch = self._batch() - len(held)
            if batch <= 0:
                return
            give_back, self._expired = self._expired, []
        try:
            taken, _, mark = self._take_many(batch, keep, self.hold_s, give_back)
        except BaseException:
            with self._lock:  # not given back: the transaction rolled back
                self._expired.extend(give_back)
            raise
        if taken:
            self._hold(keep, now + self.hold_s, mark, taken)
