"""``close_app`` (app/__init__.py) undoes what ``create_app`` opened, once or many times."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from app import close_app
from app.extensions import db


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
