"""The last state Genesys answered for a user or group, kept to write against, never to serve.

A Genesys write carries the entity's ``version`` and is refused (409) unless it is the current one
(genesys-api.md 2.3, 7). So the answer to this process's last read or write of an entity, with its
version, is as good a base for the next write as a fresh read: if anything changed the entity
since, its version moved and Genesys refuses the write, and the directory reads afresh and
applies the change again. That saves the read before most IdP writes (Okta's ``GET`` then
``PUT``, Entra's lookup then ``PATCH``, a create then its manager ``PATCH``, Entra's PATCHes one
after another), without a way to serve stale data:

* reads (``GET``, filters, lists) always ask Genesys; nothing here is ever rendered to an IdP
  unless Genesys has just accepted a write made against exactly this version;
* a write that would change nothing in Genesys (so that nothing would check the version) is
  decided on a fresh read, never on a remembered one;
* an entry lives at most ``ttl_s`` (60 s) and the map holds at most ``size`` entries; a 409 or
  404 drops it. Each process has its own (no sharing, nothing to invalidate across replicas: a
  stale entry costs one refused write and one read, never a wrong answer).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

TTL_S = 60.0
SIZE = 10_000


class Known(Generic[T]):
    """A bounded, time-limited map from an id to the last answer Genesys gave for it."""

    def __init__(
        self,
        *,
        ttl_s: float = TTL_S,
        size: int = SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._clock = clock
        self._items: collections.OrderedDict[str, tuple[float, T]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, value: T) -> None:
        with self._lock:
            self._items[key] = (self._clock() + self.ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, key: str) -> T | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found[0] <= self._clock():
                del self._items[key]
                return None
            return found[1]

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)
