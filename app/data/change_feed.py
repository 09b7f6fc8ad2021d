"""Knowing, without a round trip, that the tables an answer was read from have not changed.

A ``ChangeFeed`` keeps a *generation* per table: a number that moves after
every committed write to that table, from any process or replica. The
response cache (app/web/response_cache.py) notes the generations of the tables an
answer depends on *before* reading the database, and serves the answer only
while they are unchanged. ``None`` means the feed cannot vouch for them now.

Which tables a transaction wrote is collected from the session: the objects
a flush wrote, and the table of every ``INSERT``/``UPDATE``/``DELETE`` run
through it, widened to the tables whose foreign keys cascade from them
(deleting an article deletes its comments in the database, not in Python).
Any other statement, or a commit whose writes went unseen, counts as a write
to every table.

How the generations move:

* **The writing process**, after its own commit and before it answers (the
  session's ``after_commit``): a client reads its own writes at once.
* **The other processes of the replica** share the counters: they live in
  shared memory created before gunicorn forks (``preload_app``), so a write
  in one worker is seen by the next lookup in every other worker.
* **Other replicas, PostgreSQL:** the notifications on the channel
  ``conduit_changes``, which PostgreSQL delivers only if and when the
  transaction that sent them commits. Each worker process keeps one listener
  thread on its own psycopg connection (``LISTEN``) that moves the named
  tables' generations (the payload: table names separated by commas; ``*``
  or nothing: every table). While that connection is down the feed answers
  ``None`` (the cache is off); on reconnecting it listens first, then moves
  every generation (anything missed is forgotten), then vouches again.
  They come from three places:

  - **the database itself**, for every writer (revision e7f98158c3b0): a
    statement-level trigger on each table sends its name after any
    ``INSERT``/``UPDATE``/``DELETE``/``TRUNCATE`` (a data migration, a
    ``psql`` fix, a cascaded delete), and an event trigger sends ``*`` after
    any DDL (when the migration role is a superuser);
  - **the app's own sessions** (``_notify_other_processes``): every
    committing transaction also sends the tables it wrote. Kept on purpose,
    although the triggers send the same news: during a rolling release the
    new code may serve a database where that revision has not run yet, and
    databases made with ``create_all`` (the tests) have no
    triggers. The cost is a second notification per transaction (PostgreSQL
    folds identical ones within a transaction, so many statements on one
    table send one); a duplicate only moves the same generations again;
  - **the app's out-of-band tools** (:func:`announce_every_table`): after
    ``flask db upgrade``/``run``/``revert`` (migrations/env.py, which covers
    DDL without an event trigger), ``flask db restore`` and ``flask counters
    recount``.
* **Other processes, SQLite:** every lookup asks a dedicated connection for
  ``PRAGMA data_version``, which changes whenever another connection commits
  (DDL, a restore through the backup API and a migration included); it does
  not say which tables, so every generation moves.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from functools import cache
from typing import Any

import psycopg
from flask import current_app, has_app_context
from sqlalchemy import Connection, Engine, MetaData, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from app.models import Base

CHANNEL = "conduit_changes"
HEARTBEAT_SECONDS = 0.5  # the listener's connection is checked at least this often
RECONNECT_SECONDS = 0.05  # first retry; doubles up to MAX_RECONNECT_SECONDS
MAX_RECONNECT_SECONDS = 2.0
EXTENSION = "change_feed"
EVERY_TABLE = "*"
CASCADING = {"CASCADE", "SET NULL", "SET DEFAULT"}
_BEGUN = "change_feed_connection_begun"
_WRITTEN = "change_feed_tables_written"

log = logging.getLogger(__name__)


class Generations:
    """One counter per table in shared memory: every process forked after it shares them."""

    def __init__(self, tables: Sequence[str]) -> None:
        context = multiprocessing.get_context("fork")
        self.tables = tuple(tables)
        self._index = {name: index for index, name in enumerate(self.tables)}
        self._values = context.RawArray(ctypes.c_uint64, len(self.tables))
        self._changed_at = context.RawValue(ctypes.c_double)  # Unix time of the last bump
        self._lock = context.Lock()

    @property
    def changed_at(self) -> float:
        """When any process last moved a generation (Unix time; 0.0: never)."""
        return float(self._changed_at.value)

    def read(self, tables: Sequence[str]) -> tuple[int, ...]:
        values, index = self._values, self._index
        return tuple(values[index[name]] for name in tables)

    def bump(self, tables: Collection[str] | None = None) -> None:
        """Move the generations of ``tables`` (unknown names or ``None``: all of them)."""
        indexes: Collection[int]
        if tables is None or not set(tables) <= self._index.keys():
            indexes = range(len(self.tables))
        else:
            indexes = [self._index[name] for name in tables]
        with self._lock:
            for index in indexes:
                self._values[index] += 1
            self._changed_at.value = time.time()


class ChangeFeed:
    """The generations of one database's tables, and whether they can be trusted now."""

    def __init__(self, tables: Sequence[str]) -> None:
        self.generations = Generations(tables)
        # Called with True/False when this process's feed starts/stops vouching (metrics).
        self.watchers: list[Callable[[bool], None]] = []
        self._told: bool | None = None

    def _vouching(self, online: bool) -> None:
        if self._told is online:
            return
        self._told = online
        for watcher in self.watchers:
            watcher(online)

    def current(self, tables: Sequence[str]) -> tuple[int, ...] | None:
        """The tables' generations, or ``None`` when a change might go unnoticed."""
        return self.generations.read(tables)

    def changed(self, tables: Collection[str] | None) -> None:
        """This process committed writes to ``tables`` (``None``: unknown)."""
        self.generations.bump(tables)

    def close(self) -> None:
        """Stop watching (tests, shutdown)."""


class SqliteChangeFeed(ChangeFeed):
    """Polls ``PRAGMA data_version`` on a private connection at every lookup."""

    def __init__(self, tables: Sequence[str], path: str | None) -> None:
        super().__init__(tables)
        self._path = path  # None: an in-memory database, which only this process can write
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._connection: sqlite3.Connection | None = None
        self._version: int | None = None

    def current(self, tables: Sequence[str]) -> tuple[int, ...] | None:
        if self._path is None:
            return self.generations.read(tables)
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
                self._vouching(False)
                return None
            if not self._told:
                self._vouching(True)
            if version != self._version:
                self._version = version
                self.generations.bump()
        return self.generations.read(tables)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None


class PostgresChangeFeed(ChangeFeed):
    """``LISTEN conduit_changes`` on one connection per process, in a thread."""

    def __init__(
        self, tables: Sequence[str], conninfo: str, reconnect_seconds: float = RECONNECT_SECONDS
    ) -> None:
        super().__init__(tables)
        self._conninfo = conninfo
        self._reconnect_seconds = reconnect_seconds
        self._start_lock = threading.Lock()
        self._pid: int | None = None
        self._stop = threading.Event()
        self._closed = False
        self.online = False
        self.backend_pid: int | None = None  # the listener's server process (tests kill it)
        self.disconnections = 0
        self.notices = 0  # notifications received by this process (tests wait on it)

    def current(self, tables: Sequence[str]) -> tuple[int, ...] | None:
        if self._pid != os.getpid() and not self._closed:
            self._start()
        if not self.online:
            return None
        return self.generations.read(tables)

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
        warned = False
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
                    self.generations.bump()  # whatever happened while nobody listened
                    if warned:
                        log.info("response cache on: change feed listening again")
                        warned = False
                    self.online = True
                    self._vouching(True)
                    delay = self._reconnect_seconds
                    while not stop.is_set():
                        for notification in connection.notifies(timeout=HEARTBEAT_SECONDS):
                            self.generations.bump(_tables_in(notification.payload))
                            self.notices += 1
                        connection.execute("SELECT 1")  # a dead connection fails here
            except psycopg.Error as error:
                if not stop.is_set() and not warned:  # once per loss, not once per retry
                    log.warning("response cache off: change feed lost (%s)", error)
                    warned = True
            finally:
                if self.online:
                    self.disconnections += 1
                self.online = False
                self._vouching(False)
                self.generations.bump()
            stop.wait(delay)
            delay = min(delay * 2, MAX_RECONNECT_SECONDS)

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        self.online = False


def feed_for(engine: Engine, reconnect_seconds: float = RECONNECT_SECONDS) -> ChangeFeed:
    tables = sorted(Base.metadata.tables)
    url = engine.url
    if url.get_backend_name() == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresChangeFeed(tables, conninfo, reconnect_seconds)
    if url.get_backend_name() == "sqlite":
        memory = url.database in (None, "", ":memory:") or "mode=memory" in str(url)
        return SqliteChangeFeed(tables, None if memory else url.database)
    return _Unheard(tables)


class _Unheard(ChangeFeed):
    """A database this feed cannot hear other processes write to: never vouch (cache off)."""

    def current(self, tables: Sequence[str]) -> tuple[int, ...] | None:
        return None


def _tables_in(payload: str) -> set[str] | None:
    """The tables a notification names; ``None`` (all of them) for ``*`` or none."""
    names = {name for name in payload.split(",") if name}
    return None if not names or EVERY_TABLE in names else names


def announce_every_table(connection: Connection) -> None:
    """Tell every replica's cache that anything may have changed (``NOTIFY … '*'``).

    For writes made around the app's sessions (a migration run, a restore).
    PostgreSQL delivers it when ``connection``'s transaction commits (the
    caller commits); SQLite needs nothing (``PRAGMA data_version``). This
    process's own feed, if any, moves at once.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "SELECT pg_notify(%(channel)s, %(payload)s)",
            {"channel": CHANNEL, "payload": EVERY_TABLE},
        )
    feed = current_feed()
    if feed is not None:
        feed.changed(None)


@cache
def cascades(metadata: MetaData) -> dict[str, frozenset[str]]:
    """For each table, itself and every table a write to it may change through foreign keys."""
    direct: dict[str, set[str]] = {name: set() for name in metadata.tables}
    for table in metadata.tables.values():
        for key in table.foreign_keys:
            actions = {(key.ondelete or "").upper(), (key.onupdate or "").upper()}
            if actions & CASCADING:
                direct.setdefault(key.column.table.name, set()).add(table.name)
    closure: dict[str, frozenset[str]] = {}
    for name in direct:
        seen, todo = {name}, [name]
        while todo:
            for child in direct.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        closure[name] = frozenset(seen)
    return closure


def current_feed() -> ChangeFeed | None:
    if not has_app_context():
        return None
    return current_app.extensions.get(EXTENSION)


# --- the writing side: every session that commits tells the others ----------


def _written(session: Session) -> set[str]:
    return session.info.setdefault(_WRITTEN, set())


@event.listens_for(Session, "after_begin")
def _connection_begun(session: Session, _transaction: SessionTransaction, connection: Any) -> None:
    session.info[_BEGUN] = True


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    written = _written(session)
    for instance in (*session.new, *session.dirty, *session.deleted):
        written.update(table.name for table in inspect(instance).mapper.tables)


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_select:
        return
    table = getattr(state.statement, "table", None)
    if (state.is_insert or state.is_update or state.is_delete) and table is not None:
        _written(state.session).add(table.name)
    else:
        _written(state.session).add(EVERY_TABLE)


def _tables_written(session: Session) -> set[str] | None:
    """What the transaction wrote, cascades included; ``None``: perhaps anything."""
    written = session.info.get(_WRITTEN) or {EVERY_TABLE}  # committed, yet nothing seen
    if EVERY_TABLE in written:
        return None
    closure = cascades(Base.metadata)
    tables: set[str] = set()
    for name in written:
        if name not in closure:
            return None
        tables |= closure[name]
    return tables


@event.listens_for(Session, "before_commit")
def _notify_other_processes(session: Session) -> None:
    """PostgreSQL: ``NOTIFY`` inside the transaction, delivered if and when it commits."""
    if not session.info.get(_BEGUN) or session.in_nested_transaction():
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.flush()  # commit would flush next; the notification must name those tables too
        tables = _tables_written(session)
        payload = "" if tables is None else ",".join(sorted(tables))
        connection.exec_driver_sql(
            "SELECT pg_notify(%(channel)s, %(payload)s)", {"channel": CHANNEL, "payload": payload}
        )


@event.listens_for(Session, "after_commit")
def _invalidate_this_process(session: Session) -> None:
    """Before the writer answers, its own replica forgets what the write changed."""
    if session.in_nested_transaction():  # a savepoint: the transaction goes on
        return
    if not session.info.pop(_BEGUN, False):
        return
    feed = current_feed()
    if feed is not None:
        feed.changed(_tables_written(session))
    session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_transaction_end")
def _transaction_over(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_BEGUN, None)
        session.info.pop(_WRITTEN, None)


def close(feed: ChangeFeed | None) -> None:
    if feed is not None:
        with contextlib.suppress(Exception):
            feed.close()
