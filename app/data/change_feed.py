"""Knowing, without a round trip, that what an answer was read from has not changed.

A ``ChangeFeed`` keeps :class:`Stamps` in shared memory: a sequence number, a
stamp per bucket of *surrogate keys* (``article:<id>``, ``comments:<article
id>``, ``user:<id>``, ``usernames``, ``follows:<follower id>``,
``favorites:<user id>``, ``favorited:<identity key>``, ``list:all``,
``list:tag:<name>``, ``list:author:<id>``, ``tags``; :data:`COVERS` says
which tables' app-writes each family answers for), one per table and one for
everything. The response cache (app/web/response_cache.py) notes the sequence
number *before* reading and serves an answer only while none of the stamps
it watches moved past it. ``None`` means the feed cannot vouch for them now.

The reading side: read services call :func:`depends_on` (a no-op unless a
cache fill is pending), and a ``before_cursor_execute`` listener collects the
tables each statement of a pending fill names (:func:`start_reading`,
:func:`finish_reading`).

The writing side: write services call :func:`purge`; the session also
collects which tables a transaction wrote: the objects a flush wrote, and the
table of every ``INSERT``/``UPDATE``/``DELETE`` run through it that changed
rows (on PostgreSQL a statement whose cursor counts no row changed nothing; on
SQLite, whose count is not known before a ``RETURNING`` statement's rows are
read, every statement counts). Updates and deletes are widened to the tables
whose foreign keys cascade from theirs (an insert sets off no cascade, an
upsert that may update does). Tables no purged key covers move as whole
tables; any other statement, or a commit whose writes went unseen, moves
everything.

How the stamps move:

* **The writing process**, after its own commit and before it answers (the
  session's ``after_commit``): a client reads its own writes at once.
* **The other processes of the replica** share the stamps: they live in
  shared memory created before gunicorn forks (``preload_app``), so a write
  in one worker is seen by the next lookup in every other worker.
* **Other replicas, PostgreSQL:** the notifications on the channel
  ``conduit_changes``, which PostgreSQL delivers only if and when the
  transaction that sent them commits. Each worker process keeps one listener
  thread on its own psycopg connection (``LISTEN``). While that connection is
  down the feed answers ``None`` (the cache is off); on reconnecting it
  listens first, then moves everything (anything missed is forgotten), then
  vouches again. They come from three places:

  - **the app's own sessions** (``_notify_other_processes``): exactly one per
    committing transaction, :func:`payload_for` (JSON with a format marker,
    the feed's origin, the keys and the uncovered tables). A listener skips
    its own origin: its replica moved the stamps before the writer answered;
  - **the database itself**, for every other writer (revision e7f98158c3b0):
    a statement-level trigger on each table sends its name after any
    ``INSERT``/``UPDATE``/``DELETE``/``TRUNCATE`` (a data migration, a
    ``psql`` fix), and an event trigger sends ``*`` after any DDL (when the
    migration role is a superuser). Since revision 5f3c2d9a1b7e the trigger is
    silent on connections whose ``conduit.change_feed`` is ``app``: the app's
    engine sets it at connect time (app/config.py), migrations/env.py clears
    it on a migration's connection. A database without that revision (a
    rolling release) sends both: the table names move whole tables, safely;
  - **the app's out-of-band tools** (:func:`announce_every_table`): after
    ``flask db upgrade``/``run``/``revert`` (migrations/env.py, which covers
    DDL without an event trigger), ``flask db restore`` and ``flask counters
    recount``;
  - **any other write on the app's own connections** (``db.engine.begin()``
    in ``flask shell``, a tool), whose triggers are silent: a transaction that
    ran a statement that may write outside a session sends ``*`` with its
    commit, an autocommit statement right after it (:func:`_noted_write`).

  The previous format (table names separated by commas, ``*`` or nothing:
  everything) still moves table stamps; a listener of the previous release
  reads the new one as unknown table names, that is every table.
* **Other processes, SQLite:** every lookup asks a dedicated connection for
  ``PRAGMA data_version``, which changes whenever another connection commits
  (DDL, a restore through the backup API and a migration included); it does
  not say which tables, so everything moves.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import logging
import multiprocessing
import os
import re
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import cache, lru_cache
from typing import Any

import psycopg
from flask import current_app, g, has_app_context, has_request_context
from psycopg import sql
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, CursorResult, Engine, MetaData, event, inspect
from sqlalchemy.dialects.postgresql import dml as postgresql_dml
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql import visitors
from sqlalchemy.sql.dml import UpdateBase

from app.extensions import db
from app.models import Base

CHANNEL = "conduit_changes"
HEARTBEAT_SECONDS = 0.5  # the listener's connection is checked at least this often
# A listener not heard from for this long vouches for nothing: its connection may hang
# (a server or network that stops answering without closing it), and a heartbeat that
# never returns raises nothing. Ten heartbeats: a round starved of the GIL under load
# must not turn the cache off (and flush it when it ends).
LIVENESS_SECONDS = 10 * HEARTBEAT_SECONDS
RECONNECT_SECONDS = 0.05  # first retry; doubles up to MAX_RECONNECT_SECONDS
MAX_RECONNECT_SECONDS = 2.0
EXTENSION = "change_feed"
EVERY_TABLE = "*"
PAYLOAD_VERSION = 2
MAX_PAYLOAD_BYTES = 7_000  # PostgreSQL refuses a payload of 8,000 bytes or more
CASCADING = {"CASCADE", "SET NULL", "SET DEFAULT"}
_WRITTEN = "change_feed_tables_written"
_INSERTED = "change_feed_tables_inserted"  # written by inserts only: no cascade to widen
_UNCHANGED = "change_feed_statements_changed_nothing"  # DML ran, and changed no row
_WRITES_INTO = "change_feed_writes_into"  # execution option: (session info, tables, inserting)
_PURGED = "change_feed_keys_purged"
_BEGUN = "change_feed_connection_begun"
_IDLE = TransactionStatus.IDLE
_SESSION_NOTES = (_WRITTEN, _INSERTED, _UNCHANGED, _PURGED)  # forgotten when a transaction ends

log = logging.getLogger(__name__)


BUCKETS = 65_536  # surrogate keys hash into this many stamps (zlib.crc32)
_EVERYTHING = BUCKETS  # the stamp every entry depends on (a write to anything)

# Which tables' app-writes each surrogate key family answers for: a read that
# ran a statement on a table none of its declared families covers is not
# stored; a write to a table none of its declared families covers moves the
# table's own stamp (coarse, but safe). The family is the key up to its first ':'.
COVERS: dict[str, frozenset[str]] = {
    # the article's row, its tags, its favorites count (and, for a slug, its id)
    "article": frozenset({"articles", "article_tags", "tags", "favorites"}),
    # an article's comments (and the slug naming the article they hang on)
    "comments": frozenset({"comments", "articles"}),
    "user": frozenset({"users"}),  # one user's username, bio, image, session key
    "usernames": frozenset({"users"}),  # who a name resolves to
    "follows": frozenset({"follows"}),  # whom one user follows
    "favorites": frozenset({"favorites"}),  # what one user (by id) favorited
    "favorited": frozenset({"favorites"}),  # the same, by identity key (the previous release's)
    # list membership and its totals (stored, and pending in counter_deltas)
    "list": frozenset({"articles", "article_tags", "tags", "counters", "counter_deltas"}),
    "tags": frozenset({"tags", "article_tags", "counter_deltas"}),  # the popular tags, counts
    # a fold of the pending deltas into the stored totals (app/data/counters.py):
    # every read adds the two, so no answer moves; the key only covers the tables
    # (article_tags: the fold's UPDATE of tags counts as cascading to it, but it
    # sets no key, so nothing cascades)
    "totals": frozenset({"tags", "counters", "counter_deltas", "article_tags"}),
    # A page that shows no article: what its statement reads about each row (author,
    # favorites, tags, following) cannot change it; its list keys say when rows come.
    "no-rows": frozenset({"users", "favorites", "follows", "article_tags", "tags"}),
}


def family(key: str) -> str:
    return key.partition(":")[0]


def covered(keys: Collection[str]) -> frozenset[str]:
    """The tables whose app-writes the surrogate ``keys`` answer for (see :data:`COVERS`)."""
    tables: set[str] = set()
    for name in {family(key) for key in keys}:
        tables |= COVERS.get(name, frozenset())
    return frozenset(tables)


def bucket(key: str) -> int:
    """The stamp a surrogate key moves: stable across processes and releases."""
    return zlib.crc32(key.encode()) % BUCKETS


class Stamps:
    """A sequence number and stamps in shared memory: every process forked after it shares them.

    ``BUCKETS`` stamps for surrogate keys (a key's bucket is :func:`bucket`),
    one for "everything", then one per table. A bump takes the next sequence
    number and writes it into the stamps it moves. An answer read when the
    sequence stood at ``read_seq`` is current while none of the stamps it
    depends on is past ``read_seq``: two keys sharing a bucket only make
    invalidation coarser, never stale.

    ``identity`` names this set of stamps: random, made with it, so every
    process forked after it (gunicorn's workers of one master) holds the same
    one, and no other set of stamps ever does. Sequence numbers mean something
    only against their own stamps (they restart at 0 with a new master), so an
    answer kept outside the process (app/web/shared_answers.py) carries it.
    """

    def __init__(self, tables: Sequence[str]) -> None:
        context = multiprocessing.get_context("fork")
        self.identity = uuid.uuid4().hex
        self.tables = tuple(tables)
        self._index = {name: BUCKETS + 1 + index for index, name in enumerate(self.tables)}
        self._values = context.RawArray(ctypes.c_uint64, BUCKETS + 1 + len(self.tables))
        self._seq = context.RawValue(ctypes.c_uint64, 0)
        self._changed_at = context.RawValue(ctypes.c_double)  # Unix time of the last bump
        self._lock = context.Lock()
        # The primary's WAL position at or past the latest write announced (0: none known).
        self._position = context.RawValue(ctypes.c_uint64, 0)

    def note_position(self, position: int) -> None:
        with self._lock:
            self._position.value = max(self._position.value, position)

    def position(self) -> int:
        return int(self._position.value)

    @property
    def changed_at(self) -> float:
        """When any process last moved a stamp (Unix time; 0.0: never)."""
        return float(self._changed_at.value)

    @property
    def seq(self) -> int:
        return int(self._seq.value)

    def plausible(self, indexes: Sequence[int], read_seq: int) -> bool:
        """Could ``indexes`` and ``read_seq`` have come from these stamps' :meth:`indexes` and seq?

        For an answer read back from outside the process: sorted distinct
        indexes of these stamps, "everything" among them, and a sequence number
        these stamps have reached (one from the future would pass :meth:`fresh`).
        """
        return (
            0 <= read_seq <= self._seq.value
            and _EVERYTHING in indexes
            and all(0 <= index < len(self._values) for index in indexes)
            and all(a < b for a, b in itertools.pairwise(indexes))
        )

    def indexes(self, keys: Collection[str], tables: Collection[str]) -> tuple[int, ...]:
        """The stamps an answer depending on ``keys`` and having read ``tables`` watches."""
        index = self._index
        found = {bucket(key) for key in keys}
        found.update(index[name] for name in tables if name in index)
        found.add(_EVERYTHING)
        return tuple(sorted(found))

    def fresh(self, indexes: Sequence[int], read_seq: int) -> bool:
        """Has none of the stamps at ``indexes`` moved since the sequence stood at ``read_seq``?"""
        if self._seq.value == read_seq:
            return True
        values = self._values
        return all(values[index] <= read_seq for index in indexes)

    def bump(self, keys: Collection[str] = (), tables: Collection[str] | None = ()) -> None:
        """Move the stamps of ``keys`` and ``tables`` (``None`` or an unknown table: everything)."""
        indexes = {bucket(key) for key in keys}
        if tables is None or not set(tables) <= self._index.keys():
            indexes.add(_EVERYTHING)
        else:
            indexes.update(self._index[name] for name in tables)
        with self._lock:
            seq = self._seq.value + 1
            for index in indexes:
                self._values[index] = seq
            self._seq.value = seq
            self._changed_at.value = time.time()


class ChangeFeed:
    """The stamps of one database's keys and tables, and whether they can be trusted now."""

    # With read replicas (app/data/replicas.py): learn the WAL position of each write
    # announced, before moving the stamps, so an answer read from a replica
    # that has not replayed it is not stored (app/web/response_cache.py).
    track_positions = False

    def __init__(self, tables: Sequence[str]) -> None:
        self.stamps = Stamps(tables)
        # Who announces this feed's writes: its own notifications come back to it
        # and are skipped (it moved its stamps before the writer answered).
        self.origin = uuid.uuid4().hex[:16]
        # Called with True/False when this process's feed starts/stops vouching (metrics).
        self.watchers: list[Callable[[bool], None]] = []
        self._told: bool | None = None

    def _vouching(self, online: bool) -> None:
        if self._told is online:
            return
        self._told = online
        for watcher in self.watchers:
            watcher(online)

    def note_position(self, position: int) -> None:
        """A write this feed announces is at or before WAL ``position`` (keeps the highest)."""
        self.stamps.note_position(position)

    def position(self) -> int:
        """The WAL position at or past every write announced so far (0: none known)."""
        return self.stamps.position()

    def current(self) -> int | None:
        """The sequence number now, or ``None`` when a change might go unnoticed."""
        return self.stamps.seq

    def fresh(self, indexes: Sequence[int], read_seq: int) -> bool:
        """Is an answer read at ``read_seq``, watching the stamps ``indexes``, still current?"""
        return self.stamps.fresh(indexes, read_seq)

    def changed(self, keys: Collection[str] = (), tables: Collection[str] | None = ()) -> None:
        """Committed writes moved ``keys`` and ``tables`` (``None``: anything)."""
        self.stamps.bump(keys, tables)

    def heard(self, payload: str) -> None:
        """A notification from the channel: move what it names, unless this feed sent it."""
        origin, keys, tables = parse_payload(payload)
        if origin != self.origin:
            self.stamps.bump(keys, tables)

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

    def current(self) -> int | None:
        if self._path is None:
            return self.stamps.seq
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
                self.stamps.bump(tables=None)
        return self.stamps.seq

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
        self._alive_at = 0.0  # time.monotonic() of the listener's last completed round

    def current(self) -> int | None:
        """``None`` also while the listener's last round ended over :data:`LIVENESS_SECONDS` ago."""
        if self._pid != os.getpid() and not self._closed:
            self._start()
        if not self.online:
            return None
        if time.monotonic() - self._alive_at > LIVENESS_SECONDS:
            if self._told:  # once per silence: the metrics and the log say so
                log.warning("response cache off: change feed silent for %.0f s", LIVENESS_SECONDS)
                self._vouching(False)
            return None
        return self.stamps.seq

    def _alive(self) -> None:
        """A round completed; after a silence past :data:`LIVENESS_SECONDS`, nothing is trusted.

        A hung connection that comes back delivers what it held back, but
        answers cached before the silence must not be served again before
        that: every stamp moves (as on reconnecting).
        """
        now = time.monotonic()
        if now - self._alive_at > LIVENESS_SECONDS:
            self.stamps.bump(tables=None)
            if not self._told:
                log.info("response cache on: change feed answering again")
        self._alive_at = now
        self._vouching(True)

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
                    self.stamps.bump(tables=None)  # whatever happened while nobody listened
                    self._alive_at = time.monotonic()
                    if warned:
                        log.info("response cache on: change feed listening again")
                        warned = False
                    self.online = True
                    self._vouching(True)
                    delay = self._reconnect_seconds
                    while not stop.is_set():
                        if self.track_positions:
                            self._receive_with_position(connection)
                        else:
                            for notification in connection.notifies(timeout=HEARTBEAT_SECONDS):
                                self.heard(notification.payload)
                                self.notices += 1
                        connection.execute("SELECT 1")  # a dead connection fails here
                        self._alive()
            except psycopg.Error as error:
                if not stop.is_set() and not warned:  # once per loss, not once per retry
                    log.warning("response cache off: change feed lost (%s)", error)
                    warned = True
            finally:
                if self.online:
                    self.disconnections += 1
                self.online = False
                self._vouching(False)
                self.stamps.bump(tables=None)
            stop.wait(delay)
            delay = min(delay * 2, MAX_RECONNECT_SECONDS)

    def _receive_with_position(self, connection: psycopg.Connection[Any]) -> None:
        """Take the notifications already here; note the WAL position, then move the stamps.

        A notification arrives after its transaction committed, so the
        primary's insert position read now is at or past that commit.
        (The connection's lock is not reentrant: no query inside ``notifies()``.)
        """
        batch = list(connection.notifies(timeout=HEARTBEAT_SECONDS, stop_after=1))
        if not batch:
            return
        row = connection.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        high, _, low = (row[0] if row else "").partition("/")
        with contextlib.suppress(ValueError):
            self.note_position((int(high, 16) << 32) | int(low, 16))
        for notification in batch:
            self.heard(notification.payload)
            self.notices += 1

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

    def current(self) -> int | None:
        return None


def _tables_in(payload: str) -> set[str] | None:
    """The tables an old-format notification names; ``None`` (all of them) for ``*`` or none."""
    names = {name for name in payload.split(",") if name}
    return None if not names or EVERY_TABLE in names else names


def payload_for(origin: str, keys: Collection[str], tables: Collection[str] | None) -> str:
    """The app's one notification for a transaction (JSON, at most 7,000 bytes).

    ``{"v": 2, "o": origin, "k": keys, "t": tables}``.

    ``"t": null`` is every table. Past :data:`MAX_PAYLOAD_BYTES` (PostgreSQL
    refuses 8,000) the keys give way to every table. A listener of the previous
    release splits it at commas and finds names that are no table: it moves
    every table, which is safe.
    """
    body = {"v": PAYLOAD_VERSION, "o": origin, "k": sorted(keys)}
    body["t"] = None if tables is None else sorted(tables)
    payload = json.dumps(body, separators=(",", ":"))
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        payload = json.dumps({"v": PAYLOAD_VERSION, "o": origin, "k": [], "t": None})
    return payload


def parse_payload(payload: str) -> tuple[str, list[str], list[str] | None]:
    """(origin, keys, tables) of a notification; tables ``None``: every table.

    The previous format (the triggers', tools' and previous release's: table
    names separated by commas, ``*`` or nothing for every table) has no origin ("").
    """
    if payload.startswith("{"):
        try:
            body = json.loads(payload)
            if body.get("v") == PAYLOAD_VERSION:
                tables = body.get("t")
                return (
                    str(body.get("o", "")),
                    [str(key) for key in body.get("k") or ()],
                    None if tables is None else [str(name) for name in tables],
                )
        except (ValueError, AttributeError, TypeError):
            pass
        return "", [], None
    tables = _tables_in(payload)
    return "", [], None if tables is None else sorted(tables)


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
        feed.changed(tables=None)


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


# --- the reading side: what a cache fill's answer depends on ---------------

_READ_KEYS = "change_feed_read_keys"
_READ_TABLES = "change_feed_read_tables"
_TABLE_NAMES = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, Base.metadata.tables), key=len, reverse=True)) + r")\b"
)


def start_reading(keys: Collection[str] = ()) -> None:
    """From now on this request collects the keys its services declare and the tables it reads."""
    setattr(g, _READ_KEYS, set(keys))
    setattr(g, _READ_TABLES, set())


def finish_reading() -> tuple[set[str], set[str]] | None:
    """The (keys declared, tables read) since :func:`start_reading`; ``None``: not started."""
    keys, tables = g.pop(_READ_KEYS, None), g.pop(_READ_TABLES, None)
    return None if keys is None or tables is None else (keys, tables)


def collecting() -> bool:
    """Is a cache fill pending, so that :func:`depends_on` is heard (worth a read to find keys)?"""
    return has_request_context() and g.get(_READ_KEYS) is not None


def depends_on(*keys: str) -> None:
    """A read service's answer depends on the surrogate ``keys`` (a no-op unless a fill is pending).

    Keys name entities (``article:<id>``, ``user:<id>``, ``list:tag:<name>`` …,
    :data:`COVERS`); the write services that change them :func:`purge` them.
    """
    if has_request_context():
        pending = g.get(_READ_KEYS)
        if pending is not None:
            pending.update(keys)


@event.listens_for(Engine, "before_cursor_execute")
def _statement_read(
    _connection: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool
) -> None:
    if has_request_context():
        tables = g.get(_READ_TABLES)
        if tables is not None:
            tables.update(_TABLE_NAMES.findall(statement))


# --- the writing side: every session that commits tells the others ----------


def _written(session: Session) -> set[str]:
    return session.info.setdefault(_WRITTEN, set())


def _inserted(session: Session) -> set[str]:
    return session.info.setdefault(_INSERTED, set())


def purge(*keys: str) -> None:
    """The request's transaction changes what the surrogate ``keys`` name (sent at commit).

    The tables the transaction writes that no declared key's family covers
    (:data:`COVERS`) move as whole tables.
    """
    db.session.info.setdefault(_PURGED, set()).update(keys)


@event.listens_for(Session, "after_begin")
def _connection_begun(session: Session, _transaction: SessionTransaction, connection: Any) -> None:
    session.info[_BEGUN] = True


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    written, inserted = _written(session), _inserted(session)
    for instance in session.new:
        inserted.update(table.name for table in inspect(instance).mapper.tables)
    for instance in (*session.dirty, *session.deleted):
        written.update(table.name for table in inspect(instance).mapper.tables)


def _may_update(statement: Any) -> bool:
    """Is this ``INSERT`` an upsert that may update rows (``ON CONFLICT DO UPDATE``)?"""
    clause = getattr(statement, "_post_values_clause", None)
    return clause is not None and not isinstance(
        clause, postgresql_dml.OnConflictDoNothing | sqlite_dml.OnConflictDoNothing
    )


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    """A DML statement's table counts once its cursor says it changed rows (see below)."""
    if state.is_select:
        return
    table = getattr(state.statement, "table", None)
    if (state.is_insert or state.is_update or state.is_delete) and table is not None:
        inserting = state.is_insert and not _may_update(state.statement)
        state.update_execution_options(
            **{_WRITES_INTO: (state.session.info, (table.name,), inserting)}
        )
    else:
        _written(state.session).add(EVERY_TABLE)


def execute_write(
    statement: Any, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> CursorResult[Any]:
    """Run a prebuilt ``INSERT``/``UPDATE``/``DELETE`` on the session's connection, through Core.

    For a hot write's one statement, built once with bound parameters: the
    session's ORM layer (its events, compile state and result wrapping) costs
    about a third of the statement's CPU, and such a statement needs none of
    it (no loaded object to synchronise, nothing pending to autoflush: the
    caller's business). The session's transaction begins as for any of its
    statements, and the tables it writes are noted as :func:`_executed` notes
    a statement the session runs (:func:`_writes`); the result is Core's
    (rows, ``rowcount``). A ``SELECT`` whose writes are in its ``WITH``
    clause (PostgreSQL) that returns no row counts as one that changed none.
    """
    session = db.session()
    tables, inserting = _writes(statement)
    return session.connection().execute(
        statement,
        parameters,
        execution_options={_WRITES_INTO: (session.info, tables, inserting)},
    )


@lru_cache(maxsize=1024)  # prebuilt statements: a handful, each walked once
def _writes(statement: Any) -> tuple[tuple[str, ...], bool]:
    """The tables ``statement`` writes, its ``WITH`` clause's included, and whether it only
    inserts (no upsert that may update: an insert sets off no cascade).

    Read off the statement itself, so a part added to it is noted with it.
    ``TypeError`` for a statement that writes nothing.
    """
    dml: list[Any] = [part for part in visitors.iterate(statement) if isinstance(part, UpdateBase)]
    if not dml:
        raise TypeError(f"execute_write runs a statement that writes, not {statement!r}")
    tables = tuple(sorted({part.table.name for part in dml}))
    return tables, all(part.is_insert and not _may_update(part) for part in dml)


@event.listens_for(Engine, "after_cursor_execute")
def _statement_ran(
    _connection: Any, cursor: Any, _statement: str, _parameters: Any, context: Any, many: bool
) -> None:
    """Note the table of a session's DML statement, unless PostgreSQL counts no row changed.

    A statement that failed never gets here: its transaction (or savepoint) undoes it.
    """
    target = None if context is None else context.execution_options.get(_WRITES_INTO)
    if target is None:
        return
    info, tables, inserting = target
    if context.dialect.name == "postgresql" and not many and cursor.rowcount == 0:
        info[_UNCHANGED] = True
        return
    info.setdefault(_INSERTED if inserting else _WRITTEN, set()).update(tables)


# --- writes outside the app's sessions (PostgreSQL) -------------------------
# The app's connections silence the tables' triggers (``conduit.change_feed``
# is ``app``), so a write run on one outside a session (``db.engine.begin()``
# in ``flask shell``, a tool) would go unheard: its transaction announces
# every table when it commits. A session's own commit has been sent already
# with its notification (``NOTIFY …; COMMIT``, below), so the driver finds
# no transaction left when the engine's ``commit`` event comes.

_LEADING_COMMENTS = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z]+")
# Statements that change no row a cached answer shows; anything else may write.
_READS = frozenset(
    {
        "SELECT", "VALUES", "TABLE", "SHOW", "SET", "RESET", "BEGIN", "START", "COMMIT",
        "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "LISTEN", "UNLISTEN", "NOTIFY",
        "FETCH", "MOVE", "DECLARE", "CLOSE", "DISCARD", "DEALLOCATE", "LOCK", "VACUUM",
        "ANALYZE", "CHECKPOINT", "PRAGMA",
    }
)  # fmt: skip
_WRAPPING = frozenset({"WITH", "EXPLAIN", "PREPARE"})  # a write may be inside
_WRITING_WORDS = ("INSERT", "UPDATE", "DELETE", "MERGE")


def _may_write(statement: str) -> bool:
    """A statement that may change rows a cached answer shows, or the schema.

    Its first word after comments: a read (:data:`_READS`) does not; a
    ``WITH``, ``EXPLAIN`` or ``PREPARE`` does if it names a writing command
    anywhere (``FOR UPDATE`` counts); anything else does. Erring towards yes
    costs one notification of every table. A new table (``SELECT … INTO``) or
    a sequence (``setval``) moves no answer. Scanned with ``str.find``: a
    regular expression took tens of microseconds on a long read.
    """
    start = _LEADING_COMMENTS.match(statement).end()  # type: ignore[union-attr]
    word = _FIRST_WORD.match(statement, start)
    first = word.group().upper() if word else ""
    if first in _WRAPPING:
        upper = statement.upper()
        return any(_names_word(upper, name) for name in _WRITING_WORDS)
    return first not in _READS


def _names_word(upper: str, word: str) -> bool:
    """Does ``upper`` hold ``word`` as a whole word (not ``UPDATED_AT``)?"""
    found = upper.find(word)
    while found != -1:
        end = found + len(word)
        before = upper[found - 1] if found else " "
        after = upper[end] if end < len(upper) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        found = upper.find(word, end)
    return False


_ANNOUNCE_EVERYTHING = f"NOTIFY {CHANNEL}, '{EVERY_TABLE}'"
_OUTSIDE_WRITES = "change_feed_writes_to_announce"  # DBAPI connection's info: this transaction's


@event.listens_for(Engine, "after_cursor_execute")
def _noted_write(connection: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if connection.dialect.name != "postgresql" or not _may_write(statement):
        return
    driver: Any = connection.connection.driver_connection
    if driver.autocommit:  # committed already: tell now
        connection.exec_driver_sql(_ANNOUNCE_EVERYTHING)
    else:
        connection.info[_OUTSIDE_WRITES] = True


@event.listens_for(Engine, "commit")
def _announce_outside_writes(connection: Connection) -> None:
    if not connection.info.pop(_OUTSIDE_WRITES, False):
        return
    driver: Any = connection.connection.driver_connection
    if driver.info.transaction_status != _IDLE:
        connection.exec_driver_sql(_ANNOUNCE_EVERYTHING)  # delivered with this commit


@event.listens_for(Engine, "rollback")
def _forget_outside_writes(connection: Connection) -> None:
    if not connection.invalidated:  # a lost connection's info raises (and is gone with it)
        connection.info.pop(_OUTSIDE_WRITES, None)


def _news(session: Session) -> tuple[set[str], set[str] | None]:
    """The keys the transaction purged and the tables it wrote that they do not cover."""
    keys = set(session.info.get(_PURGED) or ())
    tables = _tables_written(session)
    if tables is not None:
        tables -= covered(keys)
    return keys, tables


def _tables_written(session: Session) -> set[str] | None:
    """What the transaction wrote, cascades included; ``None``: perhaps anything."""
    written = session.info.get(_WRITTEN) or set()
    inserted = session.info.get(_INSERTED) or set()
    if not (written or inserted) and not session.info.get(_UNCHANGED):
        return None  # committed, yet nothing seen
    closure = cascades(Base.metadata)
    if EVERY_TABLE in written or not inserted <= closure.keys():
        return None
    tables: set[str] = set(inserted)  # an insert sets off no cascade
    for name in written:
        if name not in closure:
            return None
        tables |= closure[name]
    return tables


@event.listens_for(Session, "before_commit")
def _notify_other_processes(session: Session) -> None:
    """PostgreSQL: ``NOTIFY`` and ``COMMIT`` in one round trip, delivered if it commits.

    Sent as one simple-protocol query, ``NOTIFY …; COMMIT``: the notification
    is part of the transaction, and the write saves the round trip a
    statement of its own would cost. PostgreSQL runs the ``COMMIT`` only if
    the ``NOTIFY`` succeeded; either's error is raised here, through
    SQLAlchemy, and the session rolls back as for any failed commit. The
    driver then finds no transaction open, so the session's own commit sends
    nothing more. The only listener of ``before_commit``: nothing can run
    after it in the committed transaction.
    """
    if not session.info.get(_BEGUN) or session.in_nested_transaction():
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.flush()  # commit would flush next; the notification must name those tables too
        keys, tables = _news(session)
        feed = current_feed()
        origin = "" if feed is None else feed.origin
        payload = sql.Literal(payload_for(origin, keys, tables))
        driver = connection.connection.driver_connection
        # A session bound to a connection may have joined its owner's transaction
        # (SQLAlchemy's join_transaction_mode): the owner commits, not this session.
        ending = "" if isinstance(session.bind, Connection) else "; COMMIT"
        notify = sql.SQL("NOTIFY {}, {}" + ending).format(sql.Identifier(CHANNEL), payload)
        try:
            connection.execution_options(no_parameters=True).exec_driver_sql(
                notify.as_string(driver)
            )
        except Exception:
            # The connection may have died after the server committed (the answer lost on
            # the way back): other processes heard the notification, and this one skips
            # its own. Forget here what the write may have changed, as if it committed.
            if feed is not None:
                feed.changed(keys, tables)
            raise


@event.listens_for(Session, "after_commit")
def _invalidate_this_process(session: Session) -> None:
    """Before the writer answers, its own replica forgets what the write changed."""
    if session.in_nested_transaction():  # a savepoint: the transaction goes on
        return
    if not session.info.pop(_BEGUN, False):
        return
    feed = current_feed()
    if feed is not None:
        feed.changed(*_news(session))
    for name in _SESSION_NOTES:
        session.info.pop(name, None)


@event.listens_for(Session, "after_transaction_end")
def _transaction_over(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_BEGUN, None)
        for name in _SESSION_NOTES:
            session.info.pop(name, None)


def close(feed: ChangeFeed | None) -> None:
    if feed is not None:
        with contextlib.suppress(Exception):
            feed.close()
