"""One migration run at a time per database, across processes and replicas.

PostgreSQL: a session-level advisory lock, taken on a connection of its own so
that it survives the transactions (and ``autocommit_block``s) of the run, and
is released by the server if the process dies. SQLite: an exclusive ``flock``
on a file next to the database. An in-memory SQLite database needs no lock.

The lock is re-entrant within a process: ``flask db run`` holds it around its
checks, backup and upgrade, and ``env.py`` takes it again around the upgrade.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

# A fixed 64-bit key; advisory locks are scoped to the current database.
ADVISORY_LOCK_KEY = zlib.crc32(b"conduit:migrations")

_held = threading.local()


def _depths() -> dict[str, int]:
    if not hasattr(_held, "depths"):
        _held.depths = {}
    depths: dict[str, int] = _held.depths
    return depths


def lock_file_for(engine: Engine) -> Path | None:
    """Where the SQLite lock lives (``<database>.migrate.lock``); None for memory databases."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve().with_name(Path(database).name + ".migrate.lock")


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the database's migration lock for the duration of the block."""
    key = engine.url.render_as_string(hide_password=True)
    depths = _depths()
    if depths.get(key, 0):
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return

    if engine.dialect.name == "postgresql":
        acquire = _postgresql_lock(engine)
    elif engine.dialect.name == "sqlite":
        acquire = _file_lock(lock_file_for(engine))
    else:  # pragma: no cover - the project supports SQLite and PostgreSQL
        raise RuntimeError(f"no migration lock for the {engine.dialect.name} dialect")

    with acquire:
        depths[key] = 1
        try:
            yield
        finally:
            depths.pop(key, None)


@contextmanager
def _postgresql_lock(engine: Engine) -> Iterator[None]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        got = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ).scalar()
        if not got:
            log.info("Waiting for another migration run on this database to finish…")
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("Waiting for another migration run on this database to finish…")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
