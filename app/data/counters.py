"""Running totals, kept in step with the rows they count in the same transaction.

``articlesCount`` is an exact count of every match. Counting the whole articles
table (or every article with a popular tag) on each list request grows with
the data; these totals make the unfiltered list, the tag filter and the
popular tags cost the same at any size.

Every write that adds or removes an article or an article's tag adjusts them
by what its own statements changed: the rows a ``DELETE … RETURNING`` or an
``INSERT … ON CONFLICT DO NOTHING RETURNING`` reports, never what was read
beforehand (a concurrent request may have removed those rows in between).
Every change to the totals is one statement, run last, just before the commit
(:func:`adjust`); tag totals are locked in id order, so two requests moving
tags in opposite directions cannot deadlock on them.

``flask counters verify`` compares every total with a fresh count of its rows
(exit 1 on drift); ``flask counters recount`` rebuilds them (also run after
bulk loads such as ``flask seed``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import case, delete, func, select, text, update
from sqlalchemy.exc import OperationalError

from app.data import change_feed
from app.data.upserts import upsert_adding_statement
from app.extensions import db
from app.models import Article, ArticleTag, Counter, Tag

ARTICLES = "articles"
# ``flask counters recount`` on a live PostgreSQL database: attempts to take its locks.
RECOUNT_LOCK_ATTEMPTS = 300  # 30 s: writers hold their locks briefly, but a busy host is slow
RECOUNT_LOCK_PAUSE_SECONDS = 0.1
# What ``flask counters verify`` found, in METRICS_DIRECTORY for the metrics server.
METRICS_FILE = "counters.prom"


def adjust(tag_deltas: Mapping[int, int], article_delta: int = 0) -> None:
    """Add ``tag_deltas[tag_id]`` to each tag's article count and ``article_delta`` to the total.

    Call it last, just before the commit (after the answer's re-read): the
    rows it changes are shared by every writer, and their locks are held from
    this statement to the commit, never across the request's Python.

    On PostgreSQL the tag rows are locked in id order first (concurrent
    retags, one moving ``a`` to ``b`` and another ``b`` to ``a``, would
    otherwise lock them in opposite orders and deadlock), then one statement
    moves the tag counts and, in a CTE that PostgreSQL runs after the main
    statement, the articles total: every writer takes the tag rows before the
    total. The lock cannot be a subquery of that ``UPDATE``: a row the
    subquery waited for is a newer version than the ``UPDATE``'s snapshot
    sees, and re-locking it there queues behind the other waiters (a
    deadlock). SQLite runs one writer at a time: no lock, two statements.
    A table the write leaves alone is not named (the change feed's triggers
    fire per statement, even on no rows).
    """
    changed = {tag_id: delta for tag_id, delta in tag_deltas.items() if delta}
    total = (
        upsert_adding_statement(
            Counter, key={"name": ARTICLES}, column="value", delta=article_delta
        )
        if article_delta
        else None
    )
    if not changed:
        if total is not None:
            db.session.execute(total)
        return
    on_postgresql = db.session.get_bind().dialect.name == "postgresql"
    if on_postgresql:
        db.session.execute(
            select(Tag.id)
            .where(Tag.id.in_(changed))
            .order_by(Tag.id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE: inserts that reference tags go on
        )
    statement = (
        update(Tag)
        .where(Tag.id.in_(changed))
        .values(article_count=Tag.article_count + case(changed, value=Tag.id, else_=0))
        .execution_options(synchronize_session=False)  # no tag is loaded in this session
    )
    if total is not None and on_postgresql:
        db.session.execute(statement.add_cte(total.cte("articles_total")))
        return
    db.session.execute(statement)
    if total is not None:
        db.session.execute(total)


def article_total() -> Any:
    """SQL: how many articles there are."""
    return select(func.coalesce(func.max(Counter.value), 0)).where(Counter.name == ARTICLES)


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
    """Every total that differs from a fresh count, read in one snapshot.

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
        tags = connection.execute(
            select(Tag.name, Tag.article_count, per_tag)
            .where(Tag.article_count != per_tag)
            .order_by(Tag.name)
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
    """Rebuild every total from the rows (the caller commits)."""
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
    _leave_for_metrics(found)
    for item in found:
        click.echo(f"drift: {item}")
    if found:
        click.echo(f"{len(found)} total(s) differ from the rows: run flask counters recount")
        sys.exit(1)
    click.echo("every running total equals its rows")


def _leave_for_metrics(found: list[Drift]) -> None:
    """Write what was found where the metrics server reads it, when ``METRICS_DIRECTORY`` is set.

    ``conduit_counters_drift`` (totals that differ) and
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
