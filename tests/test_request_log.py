"""Request logs (JSON lines, or readable text in development), request ids, the generic 500."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.web.request_log import JsonFormatter, TextFormatter
from tests import factories
from tests.apps import app_with_tables
from tests.listening import wait_until_listening

REQUEST_LOGGER = "app.request"


def _request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == REQUEST_LOGGER]


def test_a_request_id_is_generated_and_returned(client) -> None:
    first = client.get("/api/tags").headers["X-Request-ID"]
    second = client.get("/api/tags").headers["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_the_clients_request_id_is_honoured(client) -> None:
    response = client.get("/api/tags", headers={"X-Request-ID": "edge-7f3a.42"})
    assert response.headers["X-Request-ID"] == "edge-7f3a.42"


@pytest.mark.parametrize("unsafe", ["has spaces", "x" * 129, 'quote"and{json}'])
def test_an_unsafe_request_id_is_replaced(client, unsafe: str) -> None:
    response = client.get("/api/tags", headers={"X-Request-ID": unsafe})
    assert response.headers["X-Request-ID"] != unsafe
    assert len(response.headers["X-Request-ID"]) == 32


def test_each_request_writes_one_json_line(client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    response = client.get("/api/articles?limit=5", headers={"X-Request-ID": "req-1"})
    (record,) = _request_records(caplog)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "req-1" == response.headers["X-Request-ID"]
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/articles"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["user_id"] is None
    assert entry["level"] == "INFO"


@pytest.mark.parametrize(
    ("proxies", "logged"), [("0", "127.0.0.1"), ("1", "203.0.113.9")], ids=["none", "one"]
)
def test_the_line_names_the_client_the_trusted_proxies_saw(
    database_url: str, caplog: pytest.LogCaptureFixture, proxies: str, logged: str
) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    with app_with_tables(database_url, TRUSTED_PROXY_COUNT=proxies) as app:
        app.test_client().get("/api/tags", headers={"X-Forwarded-For": "10.0.0.1, 203.0.113.9"})

    (record,) = _request_records(caplog)
    assert record.remote_addr == logged  # type: ignore[attr-defined]


def test_the_line_names_the_authenticated_user(client, sql, caplog) -> None:
    user = factories.register(client)
    (user_id,) = sql("SELECT id FROM users WHERE username = :name", name=user["username"])[0]
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    article = factories.create_article(client, user)
    client.get(f"/api/articles/{article['slug']}", headers=factories.auth(user))
    records = _request_records(caplog)[-2:]
    assert [(r.method, r.status, r.user_id) for r in records] == [
        ("POST", 201, user_id),
        ("GET", 200, user_id),
    ]


def test_an_answer_from_the_response_cache_names_the_user_too(client, sql, caplog) -> None:
    user = factories.register(client)
    (user_id,) = sql("SELECT id FROM users WHERE username = :name", name=user["username"])[0]
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    wait_until_listening(client.application)
    responses = [client.get("/api/articles", headers=factories.auth(user)) for _ in range(2)]
    records = _request_records(caplog)[-2:]

    assert [r.headers["X-Cache"] for r in responses] == ["miss", "hit"]
    assert [r.user_id for r in records] == [user_id, user_id]


def test_errors_are_logged_with_their_status(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    client.get("/api/articles/no-such-article")
    (record,) = _request_records(caplog)
    assert record.status == 404


def test_an_unhandled_exception_is_logged_and_answered_with_a_generic_500(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    def explode():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/explode", "explode", explode)
    caplog.set_level(logging.INFO)
    response = app.test_client().get("/api/explode", headers={"X-Request-ID": "boom-1"})

    assert response.status_code == 500
    assert response.get_json() == {"errors": {"body": ["internal server error"]}}
    assert b"secret internals" not in response.data
    assert b"Traceback" not in response.data
    (error,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    entry = json.loads(JsonFormatter().format(error))
    assert entry["request_id"] == "boom-1"
    assert "RuntimeError: secret internals" in entry["traceback"]
    (access,) = _request_records(caplog)
    assert access.status == 500


SECRET = "jake@example.com $argon2id$v=19$secret-hash"


def _failing_statement() -> None:
    db.session.execute(text("SELECT * FROM no_such_table WHERE email = :email"), {"email": SECRET})


def test_a_failed_statement_never_carries_its_parameters(app: Flask) -> None:
    with app.app_context(), pytest.raises(SQLAlchemyError) as raised:
        _failing_statement()

    assert "no_such_table" in str(raised.value)
    assert "SQL parameters hidden" in str(raised.value)
    assert "jake@example.com" not in str(raised.value)


def test_a_failed_request_logs_the_failure_without_its_parameters(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    app.add_url_rule("/api/failing-statement", "failing_statement", _failing_statement)
    caplog.set_level(logging.INFO)

    response = app.test_client().get("/api/failing-statement")

    assert response.status_code >= 500
    logged = "\n".join(
        formatter.format(record)
        for record in caplog.records
        for formatter in (JsonFormatter(), TextFormatter())
    )
    assert "no_such_table" in logged
    assert "jake@example.com" not in logged
    assert SECRET not in logged


@pytest.fixture
def text_app(database_url: str) -> Iterator[Flask]:
    """An app that logs as in development (LOG_FORMAT=text)."""
    with app_with_tables(database_url, LOG_FORMAT="text") as app:
        yield app


def test_development_logs_one_readable_line_per_request(text_app: Flask, capsys) -> None:
    text_app.test_client().get("/api/tags?x=1", headers={"X-Request-ID": "req-12345678-more"})

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d\.\d{3} INFO +GET /api/tags 200 [\d.]+ ms  \[req-1234\]", lines[0]
    )


def test_development_logs_a_traceback_as_text(text_app: Flask, capsys) -> None:
    def explode():
        raise RuntimeError("secret internals")

    text_app.add_url_rule("/api/explode", "explode", explode)
    text_app.test_client().get("/api/explode")

    err = capsys.readouterr().err
    assert "ERROR   app: Unhandled exception" in err
    assert "\nTraceback (most recent call last):\n" in err
    assert "\nRuntimeError: secret internals\n" in err
    assert re.search(r"INFO +GET /api/explode 500 ", err)
