"""Running a chore at most once per interval, without losing the last request for it.

A :class:`Pacer` runs its ``work`` (a callable, no arguments) when asked
(:meth:`Pacer.ask`): in the asking thread when the last run started at least
``interval`` seconds ago, else in a daemon timer thread once the interval
since that start has passed. One timer at a time: while one is pending, asks
only ride on it. So runs start at least ``interval`` apart, and whatever was
asked for is done by a run that starts at most ``interval`` after the ask
(plus the time to schedule the thread). ``work`` returns ``False`` when it
may have left something undone that a later run would do (another process
held its lock): a run is then deferred as if asked again.

An ``interval`` of 0 runs every ask in the asking thread, and never defers.

The first user: the running totals' fold (app/data/counters.py).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# ``close`` takes this long at most: waiting for a deferred run under way, then
# retrying work left undone (within gunicorn's graceful timeout, 20 s).
JOIN_SECONDS = 10.0
# ``close`` runs work left undone again after this pause (a fold holding the lock takes ms).
RETRY_SECONDS = 0.05


class Pacer:
    """Runs ``work`` when asked, but at most once per ``interval`` seconds; thread-safe."""

    def __init__(self, work: Callable[[], bool], interval: float, name: str) -> None:
        self.interval = interval
        self._work = work
        self._name = name
        self._lock = threading.Lock()
        self._last_start = -math.inf  # time.monotonic() of the last run's start
        self._deferred: threading.Timer | None = None  # scheduled, not started yet
        self._running: threading.Thread | None = None  # the last deferred run started
        self._closed = False
        self._undone = False  # the last deferred run left work undone (closed: none deferred)

    def ask(self) -> None:
        """There is work: run it now in this thread when due, else make sure a deferred run will.

        Due: the last run started ``interval`` ago or more and no deferred run
        is pending. After :meth:`close`, every ask runs at once.
        """
        if self.interval <= 0:
            self._work()
            return
        now = time.monotonic()
        with self._lock:
            due = self._closed or (not self._pending() and now - self._last_start >= self.interval)
            if due:
                self._last_start = now
            else:
                self._defer(now)
        if due:
            self._run()

    def close(self) -> None:
        """Run a pending deferred run now, in this thread; wait for one under way; idempotent.

        Work left undone (another process held its lock: workers stopping
        together), by that run or by the deferred run under way, runs again
        every :data:`RETRY_SECONDS` until :data:`JOIN_SECONDS` have passed: nothing
        would defer it any more. Afterwards nothing is deferred: every ask
        runs at once.
        """
        deadline = time.monotonic() + JOIN_SECONDS
        with self._lock:
            self._closed = True
            pending, self._deferred = self._deferred, None
            running = self._running
        if pending is not None:
            pending.cancel()
        if running is not None:
            running.join(JOIN_SECONDS)
        if pending is None and not self._undone:
            return
        self._undone = False
        while not self._run() and time.monotonic() < deadline:
            time.sleep(RETRY_SECONDS)

    def _pending(self) -> bool:
        # A timer's thread is alive from its start() until it has run. One that is not
        # (this process was forked from the one that started it) will never run.
        return self._deferred is not None and self._deferred.is_alive()

    def _defer(self, now: float) -> None:
        """Start a timer for when the interval since the last start has passed (lock held)."""
        if self._closed or self._pending():
            return
        delay = max(0.0, self._last_start + self.interval - now)
        timer = threading.Timer(delay, self._run_deferred)
        timer.name = f"{self._name} (deferred)"
        timer.daemon = True  # a process that exits does not wait: close() runs it first
        self._deferred = timer
        timer.start()

    def _run_deferred(self) -> None:
        with self._lock:
            if self._deferred is not threading.current_thread():
                return  # closed meanwhile: close() ran it
            self._deferred = None
            self._last_start = time.monotonic()
            self._running = threading.current_thread()
        self._undone = not self._run()

    def _run(self) -> bool:
        """Run the work; ``False`` when it left something undone (then deferred, unless closed)."""
        try:
            done = self._work()
        except Exception:
            log.exception("%s failed", self._name)
            return True  # failed, not left for later: as a run the work reports done
        if not done:
            with self._lock:
                self._defer(time.monotonic())
        return done
