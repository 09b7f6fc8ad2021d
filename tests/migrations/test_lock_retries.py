"""PostgreSQL: a revision that cannot get its lock times out and is retried; reads go on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from flask import Flask

from app.db.history import read_head_file
from tests import databases
from tests.environment import PROJECT_ROOT
from tests.migrations.flask_db import AddRevision, cli, reset_postgres_schema

(BASE,) = read_head_file(PROJECT_ROOT / "migrations")  # the revisions under test come after


WAITER_DEADLINE_SECONDS = 60  # how long the holder waits for someone to queue behind it


@contextmanager
def table_held(url: str, table: str, seconds: float, mode: str = "") -> Iterator[None]:
    """Another session reads ``table``, or locks it in ``mode``, until ``seconds`` after a waiter.

    The clock starts when a session of the database is seen waiting for a lock
    (the migration's statement), not when the lock is taken: however long the
    migration takes to get there, it meets the lock (and its lock_timeout) for
    ``seconds``.
    """
    holding = threading.Event()

    def hold() -> None:
        with psycopg.connect(url) as connection, psycopg.connect(url, autocommit=True) as watch:
            if mode:
                connection.execute(f"LOCK TABLE {table} IN {mode} MODE")
            else:
                connection.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - ACCESS SHARE
            holding.set()
            deadline = time.monotonic() + WAITER_DEADLINE_SECONDS
            while time.monotonic() < deadline and not databases.lock_waiters(watch):
                time.sleep(0.005)
            time.sleep(seconds)
            connection.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    try:
        yield
    finally:
        holder.join()


@pytest.fixture
def migrating(
    app_for: Callable[..., Flask], postgres_url: str, migrations_dir: Path
) -> Callable[..., Flask]:
    """``migrating(**settings)``: an app on a PostgreSQL database at the head."""
    reset_postgres_schema(postgres_url)

    def build(**settings: object) -> Flask:
        app = app_for(postgres_url, migrations_dir, **settings)
        assert cli(app)("upgrade", BASE).exit_code == 0
        return app

    return build


def test_a_revision_that_times_out_on_a_lock_is_retried_until_it_applies(
    migrating: Callable[..., Flask], add_revision: AddRevision, postgres_url: str
) -> None:
    add_revision("alter", "op.add_column('articles', sa.Column('note', sa.Text()))")
    app = migrating(
        MIGRATION_LOCK_TIMEOUT="100ms", MIGRATION_LOCK_RETRIES=20, MIGRATION_RETRY_DELAY=0.1
    )

    with table_held(postgres_url, "articles", 1.0):
        result = cli(app)("run")

    assert result.exit_code == 0, result.output
    assert (
        "lock timeout (canceling statement due to lock timeout): revision; attempt 2"
        in result.output
    )


def test_a_revision_gives_up_after_the_configured_number_of_retries(
    migrating: Callable[..., Flask], add_revision: AddRevision, postgres_url: str
) -> None:
    add_revision("alter", "op.add_column('articles', sa.Column('note', sa.Text()))")
    app = migrating(
        MIGRATION_LOCK_TIMEOUT="50ms", MIGRATION_LOCK_RETRIES=2, MIGRATION_RETRY_DELAY=0.01
    )

    with table_held(postgres_url, "articles", 2.0):
        result = cli(app)("run")

    assert result.exit_code != 0
    assert result.output.count("lock timeout (") == 2


def test_a_revision_that_committed_part_of_itself_is_not_re_run(
    migrating: Callable[..., Flask], add_revision: AddRevision, postgres_url: str
) -> None:
    add_revision(
        "partial",
        """
        with op.get_context().autocommit_block():
            op.execute("CREATE TABLE committed_early (id integer)")
        op.add_column('articles', sa.Column('note', sa.Text()))
        """,
    )
    app = migrating(
        MIGRATION_LOCK_TIMEOUT="50ms", MIGRATION_LOCK_RETRIES=5, MIGRATION_RETRY_DELAY=0.01
    )

    with table_held(postgres_url, "articles", 1.0):
        result = cli(app)("run")

    assert result.exit_code != 0
    assert "committed part of itself" in result.output
    assert "attempt 2" not in result.output


def test_a_concurrent_index_build_that_times_out_retries_itself_and_ends_valid(
    migrating: Callable[..., Flask], add_revision: AddRevision, postgres_url: str
) -> None:
    add_revision("ix", "op.safe_create_index('ix_articles_title', 'articles', ['title'])")
    app = migrating(
        MIGRATION_LOCK_TIMEOUT="100ms", MIGRATION_LOCK_RETRIES=20, MIGRATION_RETRY_DELAY=0.1
    )

    with table_held(postgres_url, "articles", 1.0, mode="SHARE UPDATE EXCLUSIVE"):
        result = cli(app)("run")

    assert result.exit_code == 0, result.output
    assert "CREATE INDEX CONCURRENTLY ix_articles_title ON articles; attempt 2" in result.output
    assert "): revision; attempt" not in result.output  # the step retried, not the revision
    with psycopg.connect(postgres_url) as connection:
        valid = connection.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_articles_title'::regclass"
        ).fetchall()
    assert valid == [(True,)]


# Queued reads wait about this long; the others 100 ms. Half of it between the two cases
# leaves a busy machine's stall 1.5 s either way before it could pass for the other.
HELD_SECONDS = 3.0


@pytest.mark.parametrize(("lock_timeout", "queued"), [("100ms", False), ("10s", True)])
def test_requests_do_not_queue_behind_a_waiting_alter(
    migrating: Callable[..., Flask],
    add_revision: AddRevision,
    app_for: Callable[..., Flask],
    migrations_dir: Path,
    postgres_url: str,
    lock_timeout: str,
    queued: bool,
) -> None:
    """The ALTER waits at most lock_timeout, so reads behind it wait at most that long too.

    With a long lock_timeout (the second case) the reads queue for as long as
    the other transaction holds the table: the contrast that shows the rule.
    """
    add_revision("alter", "op.add_column('articles', sa.Column('note', sa.Text()))")
    app = migrating(
        MIGRATION_LOCK_TIMEOUT=lock_timeout, MIGRATION_LOCK_RETRIES=30, MIGRATION_RETRY_DELAY=0.2
    )
    reader = app_for(postgres_url, migrations_dir, RESPONSE_CACHE=False).test_client()
    latencies: list[float] = []
    statuses: set[int] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            started = time.monotonic()
            statuses.add(reader.get("/api/articles?limit=1").status_code)
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)

    with table_held(postgres_url, "articles", HELD_SECONDS):
        time.sleep(0.1)
        reading = threading.Thread(target=read)
        reading.start()
        result = cli(app)("run")
    done.set()
    reading.join()

    assert result.exit_code == 0, result.output
    assert statuses == {200}
    assert (max(latencies) > HELD_SECONDS / 2) is queued, max(latencies)
