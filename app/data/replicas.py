"""Reads from PostgreSQL streaming replicas, with exact read-your-writes.

With ``DATABASE_REPLICA_URLS`` naming replicas of ``DATABASE_URL``'s primary:

* **Which requests.** A safe request (``GET``, ``HEAD``: RFC 9110 §9.2.1)
  reads from a replica; every other request, and everything outside a request
  (commands, migrations), uses the primary. The session asks
  :meth:`Replicas.engine_for_request` for its bind (``RoutingSession``,
  app/extensions.py: SQLAlchemy's documented ``Session.get_bind`` override,
  "Custom Vertical Partitioning"); the choice is made once, before the
  request's first statement, and holds for the whole request.
* **Read-your-writes, exactly.** After a writing request commits, the answer
  carries ``X-Database-Position``: the primary's WAL insert position read
  after the commit (``pg_current_wal_insert_lsn()``, text form ``16/B374D848``),
  at or past the end of the commit record. The client sends the latest one
  it got back on its reads; a read goes to a replica only if that replica has
  replayed at least that far (``pg_last_wal_replay_lsn()``: the last check's
  answer, or when that is short, the replicas asked again once), otherwise to
  the primary. Without the header any healthy replica serves. A malformed value
  answers 400 in the error envelope. (GitLab's database load balancing works
  the same way, with the position kept in the user's session.)
* **Health.** One thread per process asks every replica, every
  :data:`CHECK_SECONDS`, whether it is still a replica (``pg_is_in_recovery()``)
  and how far it has replayed, and the primary how far it has written. A
  replica that does not answer within a second, was promoted, or is more than
  ``DATABASE_REPLICA_MAX_LAG_BYTES`` behind leaves the rotation until the next
  check finds it healthy. The replayed position it keeps is a lower bound
  (replay only moves forward), so routing on it never reads too early.

Without replicas (the default, SQLite included) nothing here runs.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.data import change_feed, pool
from app.errors import ApiError
from app.extensions import REPLICAS_EXTENSION, db

HEADER = "X-Database-Position"
SERVED_BY_HEADER = "X-Database-Served-By"  # testing only: which server read
PRIMARY = "primary"  # the name of the primary where a replica's name would be
READING_METHODS = frozenset({"GET", "HEAD"})
CHECK_SECONDS = 0.25
CHECK_TIMEOUT_SECONDS = 1
_LSN = re.compile(r"(?P<high>[0-9A-Fa-f]{1,8})/(?P<low>[0-9A-Fa-f]{1,8})")
_POSITION_QUERY = "SELECT pg_current_wal_insert_lsn()"

log = logging.getLogger(__name__)


def parse_lsn(text: str) -> int | None:
    """A WAL position (``X/Y``, two hexadecimal halves) as one integer; ``None`` if malformed."""
    match = _LSN.fullmatch(text.strip())
    if match is None:
        return None
    return (int(match["high"], 16) << 32) | int(match["low"], 16)


def format_lsn(position: int) -> str:
    """An integer WAL position in PostgreSQL's text form (``16/B374D848``)."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


@dataclass
class Replica:
    """One replica and what the last check found."""

    url: str
    engine: Engine
    name: str
    healthy: bool = False
    replayed: int = 0  # WAL position replayed when last checked (a lower bound)
    problem: str = "not checked yet"
    _connection: Any = field(default=None, repr=False)


class Replicas:
    """The replicas of one primary, their health, and the choice for a request."""

    def __init__(
        self,
        primary: Engine,
        urls: list[str],
        engine_options: dict[str, Any],
        max_lag_bytes: int,
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self.primary = primary
        self.max_lag_bytes = max_lag_bytes
        self.check_seconds = check_seconds
        self.replicas = [
            Replica(url, create_engine(url, **engine_options), _name(url)) for url in urls
        ]
        for replica in self.replicas:
            pool.ping_when_idle(replica.engine)
            event.listen(replica.engine, "handle_error", self._failed_request(replica))
        self._turn = itertools.count()
        self._pid: int | None = None
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._checked = threading.Event()
        # Told each check's verdict, (replica name, serving), and each safe
        # request's database (a replica's name or "primary"): metrics.
        self.health_watchers: list[Callable[[str, bool], None]] = []
        self.read_watchers: list[Callable[[str], None]] = []

    # -- choosing -----------------------------------------------------------

    def choose(self, required: int) -> Replica | None:
        """A healthy replica that has replayed ``required``, in turn; ``None``: the primary."""
        self._ensure_checking()
        ready = [r for r in self.replicas if r.healthy and r.replayed >= required]
        if not ready:
            ready = [r for r in self.replicas if r.healthy and self._replayed_now(r) >= required]
        if not ready:
            return None
        return ready[next(self._turn) % len(ready)]

    def _replayed_now(self, replica: Replica) -> int:
        """Ask ``replica`` how far it has replayed (a write just made is often there already).

        One round trip, only when the last check's position is short of what
        a client needs; any error counts as not there (the primary serves).
        """
        try:
            with replica.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                text = connection.exec_driver_sql("SELECT pg_last_wal_replay_lsn()::text").scalar()
        except SQLAlchemyError:
            return 0
        replayed = parse_lsn(str(text)) if text else None
        if replayed is None:
            return 0
        replica.replayed = max(replica.replayed, replayed)
        return replayed

    def engine_for_request(self) -> Engine | None:
        """The replica engine the current request reads from; ``None``: the primary."""
        return engine_for_request()

    def serving(self) -> list[dict[str, Any]]:
        """Each replica's name, whether it serves, and why not (for ``/readyz``)."""
        self._ensure_checking()
        return [
            {"name": r.name, "serving": r.healthy, **({} if r.healthy else {"problem": r.problem})}
            for r in self.replicas
        ]

    def _failed_request(self, replica: Replica) -> Any:
        """A request that lost its replica connection (or could not open one) takes the
        replica out of rotation at once; the next healthy check puts it back."""

        def failed(context: Any) -> None:
            if context.is_disconnect or context.connection is None:
                self._set(replica, False, "lost a request's connection")

        return failed

    # -- checking -----------------------------------------------------------

    def _ensure_checking(self) -> None:
        """One checker thread per process (threads do not survive gunicorn's fork)."""
        if self._pid == os.getpid() or self._stop.is_set():
            return
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            for replica in self.replicas:
                replica._connection = None
                replica.healthy = False
            self._checked = threading.Event()
            threading.Thread(target=self._check_forever, name="replica-check", daemon=True).start()
        self._checked.wait(2 * CHECK_TIMEOUT_SECONDS + 1)  # the first round, so reads can start

    def _check_forever(self) -> None:
        primary_conninfo = _conninfo(self.primary)
        primary_connection = None
        while not self._stop.is_set():
            try:
                if primary_connection is None or primary_connection.closed:
                    primary_connection = _connect(primary_conninfo)
                row = primary_connection.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                written = parse_lsn(row[0]) if row else None
            except psycopg.Error:
                primary_connection = None
                written = None
            for replica in self.replicas:
                self.check(replica, written)
            self._checked.set()
            self._stop.wait(self.check_seconds)
        if primary_connection is not None:
            primary_connection.close()
        for replica in self.replicas:
            if replica._connection is not None:
                replica._connection.close()

    def check(self, replica: Replica, primary_written: int | None) -> None:
        """Ask ``replica`` whether it replicates and how far; update its place in rotation."""
        try:
            if replica._connection is None or replica._connection.closed:
                replica._connection = _connect(_conninfo(replica.engine))
            row = replica._connection.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"
            ).fetchone()
        except psycopg.Error as error:
            if replica._connection is not None:
                replica._connection.close()
            replica._connection = None
            self._set(replica, False, f"is not reachable ({error.__class__.__name__})")
            return
        in_recovery, replayed_text = row if row else (False, None)
        replayed = parse_lsn(replayed_text) if replayed_text else None
        if not in_recovery or replayed is None:
            self._set(replica, False, "is not a replica (promoted?)")
            return
        replica.replayed = max(replica.replayed, replayed)
        lag = (primary_written or 0) - replayed
        if primary_written is not None and lag > self.max_lag_bytes:
            self._set(replica, False, f"is {lag} bytes behind the primary")
            return
        self._set(replica, True, "")

    def _set(self, replica: Replica, healthy: bool, problem: str) -> None:
        if replica.healthy != healthy:
            if healthy:
                log.info("replica %s serves reads again", replica.name)
            else:
                log.warning("replica %s leaves the rotation: %s", replica.name, problem)
        replica.healthy = healthy
        replica.problem = problem
        for watcher in self.health_watchers:
            watcher(replica.name, healthy)

    def close(self) -> None:
        self._stop.set()
        for replica in self.replicas:
            replica.engine.dispose()


def _name(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def _conninfo(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _connect(conninfo: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        conninfo,
        autocommit=True,
        connect_timeout=CHECK_TIMEOUT_SECONDS,
        application_name="conduit-replica-check",
        options=f"-c statement_timeout={CHECK_TIMEOUT_SECONDS * 1000}",
    )


# --- per request ----------------------------------------------------------------


def current() -> Replicas | None:
    return current_app.extensions.get(REPLICAS_EXTENSION)


def engine_for_request() -> Engine | None:
    """The replica engine this request reads from; ``None``: the primary."""
    if not has_request_context():
        return None
    replica = g.get("database_replica")
    return replica.engine if replica is not None else None


def _choose_for_request() -> None:
    replicas = current()
    if replicas is None or request.method not in READING_METHODS:
        return
    required = 0
    sent = request.headers.get(HEADER)
    if sent is not None:
        position = parse_lsn(sent)
        if position is None:
            raise ApiError(400, {HEADER: ["must be a WAL position like 16/B374D848"]})
        required = position
    replica = replicas.choose(required)
    g.database_replica = replica
    for watcher in replicas.read_watchers:
        watcher(replica.name if replica is not None else PRIMARY)
    g.database_replica_replayed = replica.replayed if replica is not None else None


def served_from_replica_at() -> int | None:
    """How far this request's replica had replayed before it read; ``None``: read the primary."""
    if not has_request_context():
        return None
    return g.get("database_replica_replayed")


@event.listens_for(Session, "after_commit", insert=True)
def _note_position(session: Session) -> None:
    """After a writing request's commit, before the change feed moves: where the WAL is now.

    Runs first among ``after_commit`` listeners (``insert=True``) so the
    change feed (app/data/change_feed.py) knows the position before it
    invalidates this process's cached answers.
    """
    if (
        session.in_nested_transaction()
        or not has_request_context()
        or request.method in READING_METHODS
        or current() is None
    ):
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        position = parse_lsn(str(connection.exec_driver_sql(_POSITION_QUERY).scalar()))
    if position is None:
        return
    g.database_position = max(g.get("database_position", 0), position)
    feed = change_feed.current_feed()
    if feed is not None:
        feed.note_position(position)


def _tell_position(response: Response) -> Response:
    position = g.get("database_position")
    if position is not None:
        response.headers[HEADER] = format_lsn(position)
    if current_app.testing and request.method in READING_METHODS:
        replica = g.get("database_replica")
        response.headers[SERVED_BY_HEADER] = replica.name if replica else PRIMARY
    return response


def init_app(app: Flask) -> None:
    """Route safe requests to ``DATABASE_REPLICA_URLS`` when there are any."""
    urls = app.config.get("DATABASE_REPLICA_URLS") or []
    if not urls:
        return
    with app.app_context():
        primary = db.engine
    app.extensions[REPLICAS_EXTENSION] = Replicas(
        primary,
        list(urls),
        dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}),
        int(app.config.get("DATABASE_REPLICA_MAX_LAG_BYTES", 16 * 1024 * 1024)),
        float(app.config.get("DATABASE_REPLICA_CHECK_SECONDS", CHECK_SECONDS)),
    )
    app.before_request(_choose_for_request)
    app.after_request(_tell_position)


def close(app: Flask) -> None:
    """Stop the checker and close the replicas' connections (tests, shutdown)."""
    replicas = app.extensions.get(REPLICAS_EXTENSION)
    if replicas is not None:
        replicas.close()


def wait_until(predicate: Any, seconds: float = 5.0) -> bool:
    """Poll ``predicate`` until true or ``seconds`` pass (tests: the checker's next round)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def current_or_none(app: Flask) -> Replicas | None:
    """``app``'s replicas, if it has any."""
    return app.extensions.get(REPLICAS_EXTENSION)


def feed_has_heard(feed: change_feed.ChangeFeed) -> bool:
    """Whether ``feed`` has heard of the client's last write (its sent position).

    A cached answer may predate a write this process's feed has not been told
    of yet (made through another app server): with the position the client
    sent ahead of what the feed knows, the cache is skipped for this request.
    Always true without replicas or without the header, and then the feed's
    shared position is not even read (this runs on every cache hit).
    """
    if not has_request_context() or current() is None:
        return True
    sent = request.headers.get(HEADER)
    position = parse_lsn(sent) if sent is not None else None
    return position is None or position <= feed.position()


def read_was_current(invalidated_at: int) -> bool:
    """Whether this request's answer may be stored: it read the primary, or a replica that had
    replayed ``invalidated_at`` (the latest invalidation's WAL position) before it read."""
    replayed = served_from_replica_at()
    return replayed is None or replayed >= invalidated_at
