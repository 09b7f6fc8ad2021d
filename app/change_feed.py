"""Knowing, without a round trip, that the database has not changed.

A ``ChangeFeed`` hands out a *generation*: a number that moves after every
committed write, from any process or replica, and ``None`` while that cannot
be vouched for. The response cache (app/response_cache.py) tags what it stores
with the generation it read before going to the database and serves an entry
only while the generation is unchanged.

How the generation moves:

* **The writing process**, after its own commit and before it answers (the
  session's ``after_commit``): a client reads its own writes at once.
* **The other processes of the replica** share the counter: it lives in
  shared memory created before gunicorn forks (``preload_app``), so a write
  in one worker is seen by the next lookup in every other worker.
* **Other replicas, PostgreSQL:** every committing transaction also runs
  ``NOTIFY conduit_changes``, which PostgreSQL delivers only if and when it
  commits. Each worker process keeps one listener thread on its own psycopg
  connection (``LISTEN``) that moves the generation on each notification.
  While that connection is down the feed answers ``None`` (the cache is off);
  on reconnecting it listens first, then moves the generation (anything
  missed is forgotten), then vouches again.
* **Other processes, SQLite:** every lookup asks a dedicated connection for
  ``PRAGMA data_version``, which changes whenever another connection commits.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import sqlite3
import threading
from typing import Any

import psycopg
from flask import current_app, has_app_context
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, SessionTransaction

CHANNEL = "conduit_changes"
NOTIFY = f"NOTIFY {CHANNEL}"
HEARTBEAT_SECONDS = 2.0  # the listener's connection is checked at least this often
RECONNECT_SECONDS = 0.05  # first retry; doubles up to MAX_RECONNECT_SECONDS
MAX_RECONNECT_SECONDS = 2.0
EXTENSION = "change_feed"
_WROTE = "change_feed_connection_begun"

log = logging.getLogger(__name__)


class Generation:
    """A counter in shared memory: every process forked after it shares it."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._value = context.RawValue(ctypes.c_uint64, 0)
        self._lock = context.Lock()

    def read(self) -> int:
        return int(self._value.value)

    def bump(self) -> None:
        with self._lock:
            self._value.value += 1


class ChangeFeed:
    """The generation of one database, and whether it can be trusted now."""

    def __init__(self) -> None:
        self.generation = Generation()

    def current(self) -> int | None:
        """The generation, or ``None`` when a change might go unnoticed."""
        return self.generation.read()

    def changed(self) -> None:
        """This process committed a write."""
        self.generation.bump()

    def close(self) -> None:
        """Stop watching (tests, shutdown)."""


class SqliteChangeFeed(ChangeFeed):
    """Polls ``PRAGMA data_version`` on a private connection at every lookup."""

    def __init__(self, path: str | None) -> None:
        super().__init__()
        self._path = path  # None: an in-memory database, which only this process can write
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._connection: sqlite3.Connection | None = None
        self._version: int | None = None

    def current(self) -> int | None:
        if self._path is None:
            return self.generation.read()
        with self._lock:
            try:
                if self._pid != os.getpid() or self._connection is None:
                    self._connection = sqlite3.connect(self._path, check_same_thread=False)
                    self._pid = os.getpid()
                    self._version = None
                (version,) = self._connection.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                log.warning("response cache off: cannot read PRAGMA data_version", exc_info=True)
                self._connection = None
                return None
            if version != self._version:
                self._version = version
                self.generation.bump()
        return self.generation.read()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None


class PostgresChangeFeed(ChangeFeed):
    """``LISTEN conduit_changes`` on one connection per process, in a thread."""

    def __init__(self, conninfo: str, reconnect_seconds: float = RECONNECT_SECONDS) -> None:
        super().__init__()
        self._conninfo = conninfo
        self._reconnect_seconds = reconnect_seconds
        self._start_lock = threading.Lock()
        self._pid: int | None = None
        self._stop = threading.Event()
        self._closed = False
        self.online = False
        self.backend_pid: int | None = None  # the listener's server process (tests kill it)
        self.disconnections = 0

    def current(self) -> int | None:
        if self._pid != os.getpid() and not self._closed:
            self._start()
        if not self.online:
            return None
        return self.generation.read()

    def _start(self) -> None:
        """One listener per process, started by its first lookup (threads do not survive fork)."""
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.online = False
            self._stop = threading.Event()
            threading.Thread(
                target=self._listen, args=(self._stop,), name="change-feed", daemon=True
            ).start()

    def _listen(self, stop: threading.Event) -> None:
        delay = self._reconnect_seconds
        while not stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    application_name="conduit-change-feed",
                    connect_timeout=5,
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=2,
                ) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = connection.info.backend_pid
                    self.generation.bump()  # whatever happened while nobody listened
                    self.online = True
                    delay = self._reconnect_seconds
                    while not stop.is_set():
                        for _ in connection.notifies(timeout=HEARTBEAT_SECONDS / 4):
                            self.generation.bump()
                        connection.execute("SELECT 1")  # a dead connection fails here
            except psycopg.Error as error:
                if not stop.is_set():
                    log.warning("response cache off: change feed lost (%s)", error)
            finally:
                if self.online:
                    self.disconnections += 1
                self.online = False
                self.generation.bump()
            stop.wait(delay)
            delay = min(delay * 2, MAX_RECONNECT_SECONDS)

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        self.online = False


def feed_for(engine: Engine, reconnect_seconds: float = RECONNECT_SECONDS) -> ChangeFeed:
    url = engine.url
    if url.get_backend_name() == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresChangeFeed(conninfo, reconnect_seconds)
    if url.get_backend_name() == "sqlite":
        memory = url.database in (None, "", ":memory:") or "mode=memory" in str(url)
        return SqliteChangeFeed(None if memory else url.database)
    return ChangeFeed()  # no way to hear other processes: the writer's own commits only


def current_feed() -> ChangeFeed | None:
    if not has_app_context():
        return None
    return current_app.extensions.get(EXTENSION)


# --- the writing side: every session that commits tells the others ----------


@event.listens_for(Session, "after_begin")
def _connection_begun(session: Session, _transaction: SessionTransaction, connection: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "before_commit")
def _notify_other_processes(session: Session) -> None:
    """PostgreSQL: ``NOTIFY`` inside the transaction, delivered if and when it commits."""
    if not session.info.get(_WROTE) or session.in_nested_transaction():
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(NOTIFY)


@event.listens_for(Session, "after_commit")
def _invalidate_this_process(session: Session) -> None:
    """Before the writer answers, its own replica forgets what it cached."""
    if session.in_nested_transaction():  # a savepoint: the transaction goes on
        return
    if not session.info.pop(_WROTE, False):
        return
    feed = current_feed()
    if feed is not None:
        feed.changed()


@event.listens_for(Session, "after_transaction_end")
def _transaction_over(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)


def close(feed: ChangeFeed | None) -> None:
    if feed is not None:
        with contextlib.suppress(Exception):
            feed.close()
