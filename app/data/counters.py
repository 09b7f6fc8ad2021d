"""Running totals, kept in step with the rows they count, without a shared row lock.

``articlesCount`` is an exact count of every match. Counting the whole articles
table (or every article with a popular tag) on each list request grows with
the data; these totals make the unfiltered list, the tag filter and the
popular tags cost the same at any size.

A total is its stored value (``tags.article_count``, the ``counters`` row
``articles``) plus the sum of its *pending deltas* (``counter_deltas``: a tag
id, or NULL for the articles total, and a signed change). Every write that
adds or removes an article or an article's tag appends its deltas (one
``INSERT``, just before the commit, :func:`adjust`; a creation on
PostgreSQL, in the statement that inserts it and links its tags,
:func:`recording`): what its own statements changed, the rows a ``DELETE …
RETURNING`` or an ``INSERT … ON CONFLICT DO NOTHING RETURNING`` reports,
never what was read beforehand. Appending locks
no shared row, so concurrent creations with the same tags no longer queue on
the tag rows from their update to their commit.

After its commit, the write asks for a *fold* (:func:`fold`): in a short
transaction of its own it deletes every committed delta (``DELETE …
RETURNING``) and adds them to the stored values, locking the tag rows in id
order, then the ``articles`` row. A process folds at most once per
``COUNTERS_FOLD_INTERVAL`` (default 1 s; app/data/pacing.py): the write
folds at once when the process's last fold started that long ago, else a
timer thread folds when the interval has passed, so a burst's last deltas
are folded within about one interval without waiting for another write.
Folding after every write (an interval of 0) cost about a third of a
creation's Python CPU, most folds taking a handful of deltas, and at
0.1 s the folds still took about a tenth of a worker's CPU under the write
mix (docs/performance.md). A fold never waits for another (PostgreSQL:
``pg_try_advisory_xact_lock``; when another fold holds it, this one does
nothing and folds again an interval later), and its commit does not wait
for the WAL flush (``synchronous_commit = off``: a crash can lose only a
whole fold, which leaves its deltas pending, so the totals stay exact). The
folds keep the deltas table a few rows and the stored values, which the
previous release reads alone during a rolling release, behind by about the
writes of one interval (docs/migrations.md). :func:`close` (``close_app``,
a gunicorn worker's exit) folds what a pending timer would have.

Reads add the pending deltas (:func:`article_total`, :func:`tag_total`,
:func:`pending_per_tag`). ``flask counters verify`` compares every total
with a fresh count of its rows (exit 1 on drift); ``flask counters recount``
rebuilds them and clears the deltas (also run after bulk loads such as
``flask seed``).
"""

from __future__ import annotations

import collections
import logging
import sys
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app, has_app_context
from flask.cli import with_appcontext
from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from app.data import change_feed
from app.data.pacing import Pacer
from app.data.unit_of_work import commit
from app.data.upserts import upsert_adding_statement
from app.extensions import db
from app.models import Article, ArticleTag, Counter, CounterDelta, Tag

ARTICLES = "articles"
# ``flask counters recount`` on a live PostgreSQL database: attempts to take its locks.
RECOUNT_LOCK_ATTEMPTS = 300  # 30 s: writers hold their locks briefly, but a busy host is slow
RECOUNT_LOCK_PAUSE_SECONDS = 0.1
# What ``flask counters verify`` found, in METRICS_DIRECTORY for the metrics server.
METRICS_FILE = "counters.prom"
# The transaction-scoped advisory lock one fold at a time holds (PostgreSQL; the
# slugs' two-key locks and app.db.lock's key live in other key spaces).
FOLD_LOCK_KEY = 0x636F756E74657273  # "counters"
# The app's folds, paced (app.extensions).
EXTENSION = "counters_folds"

log = logging.getLogger(__name__)


def adjust(tag_deltas: Mapping[int, int], article_delta: int = 0) -> bool:
    """Record ``tag_deltas[tag_id]`` for each tag's article count, ``article_delta`` for the total.

    One prebuilt ``INSERT`` into ``counter_deltas``, the rows its parameters
    (the driver's executemany: one round trip; through Core:
    ``change_feed.execute_write``), run last, just before the commit; it
    locks no shared row (the foreign key's ``FOR KEY SHARE`` on the tag rows
    lets every other writer, and the fold's update, go on). Nothing to record:
    no statement (the change feed's triggers fire per statement, even on no
    rows). True when it recorded something: the caller folds after its commit.
    """
    rows: list[dict[str, Any]] = [
        {"tag_id": tag_id, "delta": delta} for tag_id, delta in sorted(tag_deltas.items()) if delta
    ]
    if article_delta:
        rows.append({"tag_id": None, "delta": article_delta})
    if not rows:
        return False
    change_feed.execute_write(_RECORD_DELTAS, rows)
    return True


# Compiled once, whatever the number of rows: they go as its parameters (the
# driver's executemany, one round trip); ``.values(rows)`` compiles anew each time.
_RECORD_DELTAS = insert(CounterDelta)


def init_app(app: Flask) -> None:
    """Pace the app's folds: at most one per ``COUNTERS_FOLD_INTERVAL`` seconds (0: every write)."""
    app.extensions[EXTENSION] = Pacer(
        lambda: _fold_in(app),
        float(app.config.get("COUNTERS_FOLD_INTERVAL", 1.0)),
        name="folding the running totals",
    )


def close(app: Flask) -> None:
    """Fold now what a pending timer would have, or wait for its fold under way; idempotent."""
    pacer = app.extensions.get(EXTENSION)
    if pacer is not None:
        pacer.close()


def recording(rows: Any) -> Any:
    """SQL: ``INSERT INTO counter_deltas (tag_id, delta)`` the rows ``rows`` selects.

    For a write that records its deltas in the statement that makes them (a
    ``WITH`` clause on PostgreSQL), then ends with ``commit_moving(...,
    recorded=True)``. ``tag_id`` NULL is the articles total.
    """
    return insert(CounterDelta).from_select(["tag_id", "delta"], rows)


def commit_moving(
    tag_deltas: Mapping[int, int], article_delta: int = 0, *, recorded: bool = False
) -> None:
    """Record the deltas last (:func:`adjust`), commit the request, then ask for a :func:`fold`.

    The one way a write that moves running totals ends: a failed commit
    answers as app/data/unit_of_work.py says and folds nothing. The fold runs
    now, or within ``COUNTERS_FOLD_INTERVAL`` in a thread of its own
    (app/data/pacing.py). ``recorded``: the write's own statements recorded
    deltas too (:func:`recording`), so a fold is due even if these are none.
    """
    moved = adjust(tag_deltas, article_delta) or recorded
    commit()
    if moved:
        current_app.extensions[EXTENSION].ask()


def _fold_in(app: Flask) -> bool:
    """:func:`fold` in ``app``'s context: the request's when there is one (no second session)."""
    if has_app_context() and current_app._get_current_object() is app:  # type: ignore[attr-defined]
        return fold()
    with app.app_context():
        return fold()


def fold() -> bool:
    """Move every committed pending delta into the stored totals, in a transaction of its own.

    Call it after the request's commit. It never waits for another fold and
    never fails the request: another fold running, or any database error (a
    deadlock with the previous release's writers, the database gone), leaves
    the deltas pending for the next fold, and the totals read the same either
    way. No answer of this release changes (every read adds the pending deltas
    to the stored values), so the fold purges only ``totals``, a key no
    answer watches: the tables it writes move no stamp here, and the commit
    still notifies, which the previous release (a rolling release) reads as
    every table moved, since it reads the stored values alone. A fold that
    folds nothing (another fold running, nothing pending) rolls back: a
    commit that wrote nothing the session saw moves every stamp
    (app/data/change_feed.py), which under concurrent creations emptied
    every process's response cache several times a second.

    False when another fold held the lock (PostgreSQL): deltas committed
    while it ran may be left for a later fold; True otherwise, failed or not.
    """
    try:
        folded = _fold()
        if folded:
            db.session.commit()
        else:
            db.session.rollback()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("folding the running totals failed; the deltas stay pending", exc_info=True)
        return True
    return folded is not None


def _fold() -> int | None:
    """Fold what is pending; how many deltas it folded (``None``: another fold is running)."""
    if db.session.get_bind().dialect.name == "postgresql":
        got, _ = db.session.execute(
            select(
                func.pg_try_advisory_xact_lock(FOLD_LOCK_KEY),
                func.set_config("synchronous_commit", "off", True),
            )
        ).one()
        if not got:
            return None
    taken = db.session.execute(
        delete(CounterDelta).returning(CounterDelta.tag_id, CounterDelta.delta)
    ).all()
    if not taken:
        return 0
    per_tag: collections.Counter[int] = collections.Counter()
    article_delta = 0
    for tag_id, delta in taken:
        if tag_id is None:
            article_delta += delta
        else:
            per_tag[tag_id] += delta
    _add_to_stored(per_tag, article_delta)
    return len(taken)


def _add_to_stored(tag_deltas: Mapping[int, int], article_delta: int) -> None:
    """Add the deltas to ``tags.article_count`` and the ``articles`` row.

    The tag rows are locked in id order first, then each moves by its delta
    (one prebuilt ``UPDATE`` run for every tag in id order, one round trip),
    then the articles total: the same order as the previous release's
    writers, which update these rows themselves, so a fold and such a writer
    cannot deadlock. The lock cannot be a subquery of the ``UPDATE``: a row
    the subquery waited for is a newer version than the ``UPDATE``'s
    snapshot sees, and re-locking it there queues behind the other waiters
    (a deadlock). SQLite runs one writer at a time: the same lock statement
    takes no lock there. One statement per tag, not one ``CASE`` over them
    all: a ``CASE`` with a branch per tag is a new statement to compile for
    each number of tags a fold takes.
    """
    changed = sorted((tag_id, delta) for tag_id, delta in tag_deltas.items() if delta)
    _lock_tags([tag_id for tag_id, _ in changed])
    change_feed.purge("totals")
    if changed:
        change_feed.execute_write(
            _ADD_TO_TAG, [{"tag_id": tag_id, "delta": delta} for tag_id, delta in changed]
        )
    if article_delta:
        db.session.execute(
            upsert_adding_statement(
                Counter, key={"name": ARTICLES}, column="value", delta=article_delta
            )
        )


# One tag's stored count moved by its delta (``tag_id`` and ``delta`` bound).
_ADD_TO_TAG = (
    update(Tag)
    .where(Tag.id == bindparam("tag_id"))
    .values(article_count=Tag.article_count + bindparam("delta"))
)


def _lock_tags(tag_ids: Collection[int]) -> None:
    """Lock the tag rows in id order (PostgreSQL, ``FOR NO KEY UPDATE``)."""
    if tag_ids:
        db.session.execute(
            select(Tag.id)
            .where(Tag.id.in_(tag_ids))
            .order_by(Tag.id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE: inserts that reference tags go on
        )


def _pending(of_total: Any) -> Any:
    """SQL: the sum of the pending deltas ``of_total`` selects (0 when none)."""
    pending = select(func.sum(CounterDelta.delta)).where(of_total)
    return func.coalesce(pending.scalar_subquery(), 0)


def article_total() -> Any:
    """SQL: how many articles there are (the stored total plus its pending deltas)."""
    stored = select(func.max(Counter.value)).where(Counter.name == ARTICLES)
    return select(
        func.coalesce(stored.scalar_subquery(), 0) + _pending(CounterDelta.tag_id.is_(None))
    )


def tag_total() -> Any:
    """SQL, in a statement reading ``tags``: the tag's article count (stored plus pending)."""
    return Tag.article_count + _pending(CounterDelta.tag_id == Tag.id)


def pending_per_tag() -> Any:
    """SQL subquery: ``tag_id`` and ``delta``, the sum of each tag's pending deltas."""
    return (
        select(CounterDelta.tag_id, func.sum(CounterDelta.delta).label("delta"))
        .where(CounterDelta.tag_id.is_not(None))
        .group_by(CounterDelta.tag_id)
        .subquery("pending")
    )


@dataclass(frozen=True)
class Drift:
    """A running total that differs from a fresh count of its rows."""

    total: str  # "articles", or "tag <name>"
    stored: int
    counted: int

    def __str__(self) -> str:
        return f"{self.total}: stored {self.stored}, counted {self.counted}"


def _per_tag_count() -> Any:
    return select(func.count()).where(ArticleTag.tag_id == Tag.id).correlate(Tag).scalar_subquery()


def drift() -> list[Drift]:
    """Every total (stored plus pending) that differs from a fresh count, read in one snapshot.

    On its own connection, in one transaction (REPEATABLE READ on PostgreSQL,
    SQLite's read transaction): a write that commits halfway through the
    comparison is seen entirely or not at all.
    """
    engine = db.engine
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as connection:
        stored_total = connection.scalar(article_total()) or 0
        counted_total = connection.scalar(select(func.count()).select_from(Article)) or 0
        per_tag = _per_tag_count()
        stored = tag_total()
        tags = connection.execute(
            select(Tag.name, stored, per_tag).where(stored != per_tag).order_by(Tag.name)
        ).all()
        connection.rollback()
    found = [Drift(f"tag {name}", stored, counted) for name, stored, counted in tags]
    if stored_total != counted_total:
        found.insert(0, Drift(ARTICLES, stored_total, counted_total))
    return found


def lock_counted_rows(*, nowait: bool = False) -> None:
    """PostgreSQL: hold off every write to articles and their tags until commit.

    ``SHARE`` mode lets reads go on and makes writers wait, so a recount sees
    rows no one is changing. SQLite needs nothing: the recount's first
    statement is a write, which takes the database's single write lock.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        suffix = " NOWAIT" if nowait else ""
        db.session.execute(text(f"LOCK TABLE articles, article_tags IN SHARE MODE{suffix}"))


def recount() -> None:
    """Rebuild every total from the rows and clear the pending deltas (the caller commits).

    PostgreSQL: waits for a fold in progress first (its advisory lock), so
    no fold adds deltas this recount already counted.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(FOLD_LOCK_KEY)))
    db.session.execute(delete(CounterDelta))
    db.session.execute(update(Tag).values(article_count=_per_tag_count()))
    total = db.session.scalar(select(func.count()).select_from(Article)) or 0
    db.session.execute(delete(Counter).where(Counter.name == ARTICLES))
    db.session.add(Counter(name=ARTICLES, value=total))


def recount_live() -> None:
    """Recount and commit while requests keep writing (``flask counters recount``).

    On PostgreSQL the table locks are taken with ``NOWAIT`` and retried: a
    waiting ``LOCK`` could otherwise deadlock with a delete that already
    removed an article's tags and now wants the article.
    """
    for attempt in range(RECOUNT_LOCK_ATTEMPTS):
        try:
            lock_counted_rows(nowait=True)
        except OperationalError:
            db.session.rollback()
            if attempt == RECOUNT_LOCK_ATTEMPTS - 1:
                raise
            time.sleep(RECOUNT_LOCK_PAUSE_SECONDS)
            continue
        recount()
        # Any cached answer may show a total just repaired: every replica forgets them all.
        change_feed.announce_every_table(db.session.connection())
        db.session.commit()
        return


@click.group("counters")
def counters_cli() -> None:
    """Check and repair the running totals (articles, per-tag article counts)."""


@counters_cli.command("verify")
@with_appcontext
def verify_command() -> None:
    """Compare every running total with a fresh count; exit 1 on drift."""
    found = drift()
    _leave_for_metrics(found, pending_deltas())
    for item in found:
        click.echo(f"drift: {item}")
    if found:
        click.echo(f"{len(found)} total(s) differ from the rows: run flask counters recount")
        sys.exit(1)
    click.echo("every running total equals its rows")


def pending_deltas() -> int:
    """How many deltas wait to be folded (a handful while the folds keep up)."""
    return db.session.scalar(select(func.count()).select_from(CounterDelta)) or 0


def _leave_for_metrics(found: list[Drift], pending: int) -> None:
    """Write what was found where the metrics server reads it, when ``METRICS_DIRECTORY`` is set.

    ``conduit_counters_drift`` (totals that differ),
    ``conduit_counters_pending_deltas`` and
    ``conduit_counters_verified_timestamp_seconds``, in Prometheus' text format,
    replaced atomically (app/web/metrics.py serves the file's series).
    """
    directory = current_app.config.get("METRICS_DIRECTORY")
    if not directory:
        return
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    Gauge(
        "conduit_counters_drift",
        "Running totals that differed from a fresh count at the last flask counters verify.",
        registry=registry,
    ).set(len(found))
    Gauge(
        "conduit_counters_pending_deltas",
        "Running totals' deltas not yet folded into the stored totals at the last verify.",
        registry=registry,
    ).set(pending)
    Gauge(
        "conduit_counters_verified_timestamp_seconds",
        "Unix time of the last flask counters verify.",
        registry=registry,
    ).set_to_current_time()
    Path(directory).mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(Path(directory) / METRICS_FILE), registry)


@counters_cli.command("recount")
@with_appcontext
def recount_command() -> None:
    """Rebuild every running total from the rows (safe while the app serves)."""
    before = drift()
    recount_live()
    for item in before:
        click.echo(f"repaired {item.total}: {item.stored} -> {item.counted}")
    click.echo(f"recounted; {len(before)} total(s) repaired")
