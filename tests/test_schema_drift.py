"""A schema the running code does not match: 503 with Retry-After, and /readyz unready.

The example: renaming ``users.bio`` while the release serves (what a one-step
rename revision does) answers 503, never 500; readiness names the missing
column until it is back, and then both recover.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import close_app
from app.extensions import db
from tests.apps import make_app, reset_database
from tests.factories import auth, create_article, register

DRIFT = {"errors": {"database": ["schema does not match this release, please retry"]}}


@pytest.fixture
def migrated_app(database_url: str) -> Iterator[Flask]:
    """An app on a database migrated to the head (so /readyz is ready)."""
    app = make_app(database_url)
    reset_database(app)
    with app.app_context():
        upgrade()
    yield app
    reset_database(app)
    close_app(app)


@pytest.fixture
def serving(migrated_app: Flask) -> FlaskClient:
    """A client of the migrated app, with one article by jake."""
    client = migrated_app.test_client()
    jake = register(client, username="jake")
    create_article(client, jake)
    return client


def rename_column(app: Flask, table: str, old: str, new: str) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")


def test_a_renamed_column_answers_503_with_retry_after(serving: FlaskClient) -> None:
    rename_column(serving.application, "users", "bio", "biography")

    response = serving.get("/api/articles?limit=1")

    assert response.status_code == 503
    assert response.get_json() == DRIFT
    assert response.headers["Retry-After"] == "1"


def test_a_dropped_table_answers_503(serving: FlaskClient) -> None:
    (article,) = serving.get("/api/articles").get_json()["articles"]
    with serving.application.app_context(), db.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE comments")

    response = serving.get(f"/api/articles/{article['slug']}/comments")

    assert response.status_code == 503
    assert response.get_json() == DRIFT


def test_a_write_that_meets_drift_writes_nothing(serving: FlaskClient) -> None:
    anna = register(serving, username="anna")
    rename_column(serving.application, "articles", "description", "summary")

    response = serving.post(
        "/api/articles",
        json={"article": {"title": "T", "description": "D", "body": "B"}},
        headers=auth(anna),
    )
    rename_column(serving.application, "articles", "summary", "description")

    assert response.status_code == 503
    assert serving.get("/api/articles?author=anna").get_json()["articlesCount"] == 0


def test_drift_is_logged_once_naming_the_column(serving: FlaskClient, caplog) -> None:
    rename_column(serving.application, "users", "bio", "biography")

    with caplog.at_level(logging.DEBUG, logger="app.data.schema_drift"):
        serving.get("/api/articles?limit=1")
        serving.get("/api/profiles/jake")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]

    assert len(errors) == 1
    assert "bio" in errors[0].getMessage()


def test_readyz_is_unready_after_drift_until_the_schema_matches(serving: FlaskClient) -> None:
    app = serving.application
    assert serving.get("/readyz").status_code == 200
    rename_column(app, "users", "bio", "biography")

    during = serving.get("/api/articles?limit=1"), serving.get("/readyz")
    rename_column(app, "users", "biography", "bio")
    after = serving.get("/api/articles?limit=1"), serving.get("/readyz")

    assert [r.status_code for r in during] == [503, 503]
    (problem,) = during[1].get_json()["errors"]["database"]
    assert "column users.bio" in problem
    assert [r.status_code for r in after] == [200, 200]
