"""``close_app`` (app/__init__.py) undoes what ``create_app`` opened, once or many times."""

from __future__ import annotations

import threading

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from app import close_app
from app.extensions import db
from tests.apps import app_with_tables
from tests.factories import create_article, register


def test_a_closed_app_keeps_no_pooled_connection(app: Flask, client: FlaskClient) -> None:
    client.get("/api/tags")
    with app.app_context():
        assert db.engine.pool.checkedin() > 0

    close_app(app)

    with app.app_context():
        assert db.engine.pool.checkedin() == 0


def test_closing_an_app_twice_is_harmless(app: Flask) -> None:
    close_app(app)
    close_app(app)  # and the fixture closes it once more


def pending_deltas(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(text("SELECT count(*) FROM counter_deltas"))


def test_closing_an_app_folds_the_totals_its_timer_would_have_and_leaves_no_timer(
    database_url: str,
) -> None:
    with app_with_tables(database_url, COUNTERS_FOLD_INTERVAL="60s") as app:
        client = app.test_client()
        jake = register(client)
        create_article(client, jake, tagList=["a"])  # folded at once
        create_article(client, jake, tagList=["a"])  # its fold deferred a minute
        assert pending_deltas(app) == 2

        close_app(app)

        assert pending_deltas(app) == 0
        assert not [t for t in threading.enumerate() if t.name.endswith("(deferred)")]
