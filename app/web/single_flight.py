"""Fills in progress in one process, one per key: the first miss fills, the others wait.

The response cache (app/web/response_cache.py) keeps answers per process. After
an invalidation several threads of a process often miss the same key at once;
each would compute the same answer (several ms of CPU each, on cores the other
threads need). With :class:`Flights` the first thread to miss a key *leads*
its fill; the others *follow*: they wait on the leader's event, bounded by the
caller, then look the key up again.

A flight exists only while its fill runs: the leader lands it (removes it and
sets its event) when its request ends, however it ends, so the table holds at
most one entry per thread filling, and waiters never wait on a fill that is over.
No lock is held while anyone computes or waits: the lock guards the table only.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Flights(Generic[K]):
    """The fills under way in this process, by key (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._under_way: dict[K, threading.Event] = {}

    def join(self, key: K) -> tuple[threading.Event, bool]:
        """(the flight's event, ``True`` if the caller leads it).

        A leader must :meth:`land` the event when its fill ends; a follower
        may wait on it (``event.wait(timeout)``) and must not land it.
        """
        with self._lock:
            event = self._under_way.get(key)
            if event is not None:
                return event, False
            event = self._under_way[key] = threading.Event()
            return event, True

    def land(self, key: K, event: threading.Event) -> None:
        """The fill led with ``event`` is over (stored or not): wake its followers."""
        with self._lock:
            if self._under_way.get(key) is event:
                del self._under_way[key]
        event.set()

    def __len__(self) -> int:
        return len(self._under_way)
