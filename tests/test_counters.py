"""Running totals stay equal to the rows they count, whatever the writes.

Concurrent writes are covered in tests/test_races.py; this file covers the
totals one request at a time, their pending deltas and the fold, and
``flask counters verify`` / ``recount``.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import psycopg
import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from app.data import counters
from app.extensions import db
from tests import databases
from tests.apps import app_with_tables, served_on
from tests.factories import auth, create_article, register
from tests.listening import wait_for
from tests.serving import ServedApp, storm
from tests.totals import pend_articles_delta, pend_every_total

# How long past the interval a deferred fold may take on a loaded machine.
MARGIN_SECONDS = 5.0


def totals(client):
    return {
        "all": client.get("/api/articles").get_json()["articlesCount"],
        "a": client.get("/api/articles?tag=a").get_json()["articlesCount"],
        "b": client.get("/api/articles?tag=b").get_json()["articlesCount"],
        "tags": client.get("/api/tags").get_json()["tags"],
    }


def test_totals_follow_creates_retags_and_deletes(client):
    jake = register(client)
    first = create_article(client, jake, tagList=["a", "b"])
    second = create_article(client, jake, tagList=["a"])
    create_article(client, jake)

    assert totals(client) == {"all": 3, "a": 2, "b": 1, "tags": ["a", "b"]}

    client.put(
        f"/api/articles/{second['slug']}", json={"article": {"tagList": ["b"]}}, headers=auth(jake)
    )
    assert totals(client) == {"all": 3, "a": 1, "b": 2, "tags": ["b", "a"]}

    client.delete(f"/api/articles/{first['slug']}", headers=auth(jake))
    assert totals(client) == {"all": 2, "a": 0, "b": 1, "tags": ["b"]}


def test_a_rejected_write_changes_no_total(client):
    jake = register(client)
    article = create_article(client, jake, tagList=["a"])

    response = client.put(
        f"/api/articles/{article['slug']}",
        json={"article": {"tagList": ["b", ""]}},
        headers=auth(jake),
    )

    assert response.status_code == 422
    assert totals(client) == {"all": 1, "a": 1, "b": 0, "tags": ["a"]}


def test_recount_rebuilds_totals_from_the_rows(app, client):
    jake = register(client)
    create_article(client, jake, tagList=["a", "b"])
    create_article(client, jake, tagList=["a"])
    sql_statements = ["UPDATE tags SET article_count = 99", "UPDATE counters SET value = 42"]
    with app.app_context():
        for statement in sql_statements:
            db.session.execute(db.text(statement))
        counters.recount()
        db.session.commit()

    assert totals(client) == {"all": 2, "a": 2, "b": 1, "tags": ["a", "b"]}


def corrupt_totals(app):
    with app.app_context():
        db.session.execute(db.text("UPDATE tags SET article_count = 99 WHERE name = 'a'"))
        db.session.execute(db.text("UPDATE counters SET value = 42"))
        db.session.commit()


def test_verify_command_passes_when_totals_equal_the_rows(app, client):
    jake = register(client)
    create_article(client, jake, tagList=["a", "b"])

    result = app.test_cli_runner().invoke(args=["counters", "verify"])

    assert result.exit_code == 0
    assert result.output == "every running total equals its rows\n"


def test_verify_command_exits_1_naming_every_drifted_total(app, client):
    jake = register(client)
    create_article(client, jake, tagList=["a", "b"])
    create_article(client, jake, tagList=["a"])
    corrupt_totals(app)

    result = app.test_cli_runner().invoke(args=["counters", "verify"])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "drift: articles: stored 42, counted 2",
        "drift: tag a: stored 99, counted 2",
        "2 total(s) differ from the rows: run flask counters recount",
    ]


def test_recount_command_repairs_every_total(app, client):
    jake = register(client)
    create_article(client, jake, tagList=["a", "b"])
    create_article(client, jake, tagList=["a"])
    corrupt_totals(app)

    result = app.test_cli_runner().invoke(args=["counters", "recount"])

    assert result.exit_code == 0, result.output
    assert "2 total(s) repaired" in result.output
    assert totals(client) == {"all": 2, "a": 2, "b": 1, "tags": ["a", "b"]}
    with app.app_context():
        assert counters.drift() == []


def test_recount_while_articles_are_written_leaves_totals_equal_to_the_rows(
    served_app: ServedApp,
):
    """``flask counters recount`` is safe on a live database: writers wait for it."""
    author = served_app.register("author")
    recounting = threading.Event()
    recounting.set()

    def write() -> None:
        client = served_app.client(author)
        while recounting.is_set():
            article = {"title": "t", "description": "d", "body": "b", "tagList": ["a", "b"]}
            created = client.post("/api/articles", json={"article": article})
            assert created.status_code == 201, created.text
            slug = created.json()["article"]["slug"]
            retagged = client.put(f"/api/articles/{slug}", json={"article": {"tagList": ["b"]}})
            assert retagged.status_code == 200, retagged.text
        client.close()

    def recount_repeatedly() -> None:
        runner = served_app.app.test_cli_runner()
        try:
            for _ in range(10):
                result = runner.invoke(args=["counters", "recount"])
                assert result.exit_code == 0, result.output
        finally:
            recounting.clear()

    storm([recount_repeatedly, write, write, write])

    with served_app.app.app_context():
        assert counters.drift() == []


def stored_totals(app):
    """What the previous release reads: the stored totals alone, and how many deltas wait."""
    with app.app_context():
        tags = db.session.execute(db.text("SELECT name, article_count FROM tags ORDER BY name"))
        stored = {
            "all": db.session.scalar(db.text("SELECT max(value) FROM counters")),
            **{name: count for name, count in tags},
            "pending": db.session.scalar(db.text("SELECT count(*) FROM counter_deltas")),
        }
        db.session.rollback()
    return stored


@pytest.fixture
def app_folding_every(database_url: str) -> Iterator[Callable[[str], Flask]]:
    """``app_folding_every("0.3s")``: an app on the test's database with that fold interval."""
    with ExitStack() as apps:
        yield lambda interval: apps.enter_context(
            app_with_tables(database_url, COUNTERS_FOLD_INTERVAL=interval)
        )


def test_with_an_interval_of_0_every_write_leaves_its_totals_folded_into_the_stored_values(
    app_folding_every,
):
    """Stored values are what the previous release reads during a rolling release."""
    app = app_folding_every("0")
    client = app.test_client()
    jake = register(client)
    first = create_article(client, jake, tagList=["a", "b"])
    create_article(client, jake, tagList=["a"])
    client.put(
        f"/api/articles/{first['slug']}", json={"article": {"tagList": ["b"]}}, headers=auth(jake)
    )

    assert stored_totals(app) == {"all": 2, "a": 1, "b": 1, "pending": 0}

    client.delete(f"/api/articles/{first['slug']}", headers=auth(jake))

    assert stored_totals(app) == {"all": 1, "a": 1, "b": 0, "pending": 0}


def test_with_an_interval_the_stored_totals_catch_up_within_it_without_another_write(
    app_folding_every,
):
    """The last writes of a burst are folded by a timer, not left for the next write."""
    app = app_folding_every("0.5s")
    client = app.test_client()
    jake = register(client)
    for tags in (["a", "b"], ["a"], ["b"], ["a"]):
        create_article(client, jake, tagList=tags)
    last_write = time.monotonic()

    wait_for(
        lambda: stored_totals(app) == {"all": 4, "a": 3, "b": 2, "pending": 0},
        0.5 + MARGIN_SECONDS,
    )

    assert time.monotonic() - last_write <= 0.5 + MARGIN_SECONDS


def fold_transactions(app: Flask) -> list[float]:
    """When each fold that took deltas ran (its ``DELETE … RETURNING``), in any thread."""
    started: list[float] = []

    def record(_conn, _cursor, statement: str, *_args) -> None:
        if statement.startswith("DELETE FROM counter_deltas") and "RETURNING" in statement:
            started.append(time.monotonic())

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
    return started


def test_a_burst_of_writes_folds_at_most_once_per_interval(app_folding_every):
    """The first write of a burst folds at once; the rest ride on one fold an interval later."""
    app = app_folding_every("1s")
    client = app.test_client()
    jake = register(client)
    folds = fold_transactions(app)

    started = time.monotonic()
    for _ in range(20):
        create_article(client, jake, tagList=["a", "b"])
    burst_seconds = time.monotonic() - started
    wait_for(lambda: stored_totals(app)["pending"] == 0, 1 + MARGIN_SECONDS)

    assert 2 <= len(folds) <= 2 + int(burst_seconds), (len(folds), burst_seconds)
    assert stored_totals(app) == {"all": 20, "a": 20, "b": 20, "pending": 0}


@pytest.mark.served
@pytest.mark.parametrize("engine_name", databases.PARAMS)
def test_a_stopping_worker_folds_what_its_timer_would_have(engine_name, tmp_path, worker_id):
    """gunicorn's ``worker_exit``: a graceful stop leaves no delta for another write to fold."""
    with served_on(
        engine_name,
        tmp_path,
        f"stopping_{worker_id}",
        WEB_CONCURRENCY="1",
        COUNTERS_FOLD_INTERVAL="60s",
    ) as served:
        author = served.register("author")
        client = served.client(author)
        article = {"title": "t", "description": "d", "body": "b", "tagList": ["a"]}
        for _ in range(3):  # the first folds at once, the others wait for a timer (a minute)
            assert client.post("/api/articles", json={"article": article}).status_code == 201
        client.close()
        assert stored_totals(served.app) == {"all": 1, "a": 1, "pending": 4}

        served.server.process.terminate()
        served.server.process.wait(timeout=60)

        assert stored_totals(served.app) == {"all": 3, "a": 3, "pending": 0}


def test_totals_read_the_stored_values_plus_the_pending_deltas(app, client):
    jake = register(client)
    create_article(client, jake, tagList=["a", "b"])
    create_article(client, jake, tagList=["a"])
    pend_every_total(app)

    assert totals(client) == {"all": 2, "a": 2, "b": 1, "tags": ["a", "b"]}
    with app.app_context():
        assert counters.drift() == []


def test_verify_counts_pending_deltas_in_the_totals(app, client):
    jake = register(client)
    create_article(client, jake, tagList=["a"])
    pend_articles_delta(app, 5)

    result = app.test_cli_runner().invoke(args=["counters", "verify"])

    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "drift: articles: stored 6, counted 1"


def test_the_next_fold_takes_every_pending_delta(app_folding_every):
    app = app_folding_every("0")
    client = app.test_client()
    jake = register(client)
    create_article(client, jake, tagList=["a", "b"])
    pend_every_total(app)

    create_article(client, jake, tagList=["b"])

    assert stored_totals(app) == {"all": 2, "a": 1, "b": 2, "pending": 0}
    assert totals(client) == {"all": 2, "a": 1, "b": 2, "tags": ["b", "a"]}


def test_recount_clears_the_pending_deltas(app, client):
    jake = register(client)
    create_article(client, jake, tagList=["a"])
    pend_articles_delta(app, 5)

    assert app.test_cli_runner().invoke(args=["counters", "recount"]).exit_code == 0

    assert stored_totals(app) == {"all": 1, "a": 1, "pending": 0}
    assert totals(client)["all"] == 1


def test_a_creation_does_not_wait_for_the_totals_of_another_in_flight(app, client, database_url):
    """Two creations with the same tags: neither holds a row the other needs until it commits."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time")
    jake = register(client)
    create_article(client, jake, tagList=["a", "b"])
    answers = []
    with app.app_context():
        tag_ids = db.session.scalars(db.text("SELECT id FROM tags")).all()
        counters.adjust(dict.fromkeys(tag_ids, 1), 1)  # another creation, not yet committed
        creating = threading.Thread(
            target=lambda: answers.append(create_article(client, jake, tagList=["a", "b"]))
        )
        creating.start()
        creating.join(timeout=10)
        created_meanwhile = not creating.is_alive()
        db.session.rollback()
    creating.join()

    assert created_meanwhile
    assert len(answers) == 1
    assert totals(client) == {"all": 2, "a": 2, "b": 2, "tags": ["a", "b"]}


def test_a_fold_that_fails_leaves_the_write_answered_and_its_deltas_pending(
    app, client, monkeypatch
):
    jake = register(client)

    def fail() -> None:
        raise OperationalError("DELETE FROM counter_deltas", {}, Exception("connection lost"))

    monkeypatch.setattr(counters, "_fold", fail)
    create_article(client, jake, tagList=["a"])

    assert stored_totals(app)["pending"] == 2
    assert totals(client) == {"all": 1, "a": 1, "b": 0, "tags": ["a"]}
    with app.app_context():
        assert counters.drift() == []


def test_a_stopping_worker_folds_its_deltas_even_while_another_worker_folds(
    app_folding_every, database_url
):
    """Workers stopping together: the one that finds the fold lock taken still folds its own."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no fold lock: one writer at a time")
    app = app_folding_every("60s")
    client = app.test_client()
    jake = register(client)
    for _ in range(2):  # the first folds at once, the second waits for a timer (a minute)
        create_article(client, jake, tagList=["a"])
    assert stored_totals(app) == {"all": 1, "a": 1, "pending": 2}

    other_worker = psycopg.connect(database_url.replace("+psycopg", ""), autocommit=False)
    other_worker.execute("SELECT pg_advisory_xact_lock(%s)", (counters.FOLD_LOCK_KEY,))
    its_fold_ends = threading.Timer(0.3, other_worker.rollback)  # having taken nothing
    its_fold_ends.start()
    try:
        counters.close(app)  # the worker's exit (gunicorn's worker_exit)
    finally:
        its_fold_ends.join()
        other_worker.close()

    assert stored_totals(app) == {"all": 2, "a": 2, "pending": 0}
