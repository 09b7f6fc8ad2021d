"""Prometheus metrics: the numbers move with what the app does, and only on METRICS_PORT.

In one process the app's own registry is read (``metrics.exposition``); under
gunicorn with two workers, the master's endpoint on ``METRICS_PORT`` serves
their sum while the API's port never serves them at ``/metrics``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app import close_app
from app.data import counters
from app.extensions import db
from app.web import metrics
from tests import databases
from tests.apps import TEST_SECRET_KEY, app_with_tables, make_app, served_on
from tests.factories import auth, create_article, register
from tests.listening import wait_until_listening
from tests.serving import storm

PORT = "9464"  # never bound by these in-process tests: nothing serves it


def samples(text_format: str | bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    if isinstance(text_format, bytes):
        text_format = text_format.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text_format)
        for sample in family.samples
    }


def value(app: Flask, name: str, **labels: str) -> float | None:
    return samples(metrics.exposition(app)).get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def metered(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    with app_with_tables(
        database_url, METRICS_PORT=PORT, METRICS_DIRECTORY=str(tmp_path / "metrics")
    ) as app:
        yield app


@pytest.fixture
def metered_client(metered: Flask) -> FlaskClient:
    wait_until_listening(metered)  # PostgreSQL: the cache is off until the feed listens
    return metered.test_client()


def test_without_a_metrics_port_nothing_is_hooked_in(app: Flask) -> None:
    assert metrics.EXTENSION not in app.extensions
    hooks = [*app.before_request_funcs.get(None, []), *app.after_request_funcs.get(None, [])]
    assert not [hook for hook in hooks if hook.__module__ == metrics.__name__]


def test_a_request_is_counted_by_its_route_template_method_and_status(
    metered: Flask, metered_client: FlaskClient
) -> None:
    metered_client.get("/api/articles/no-such-article")
    metered_client.get("/api/articles/another-missing-one")

    route = "/api/articles/<slug:slug>"
    assert (
        value(metered, "conduit_http_requests_total", route=route, method="GET", status="404") == 2
    )
    assert (
        value(metered, "conduit_http_request_duration_seconds_count", route=route, method="GET")
        == 2
    )
    assert value(metered, "conduit_http_requests_in_flight") == 0


def test_a_path_no_rule_matches_counts_under_one_label(
    metered: Flask, metered_client: FlaskClient
) -> None:
    metered_client.open("/api/nothing/here", method="BREW")

    assert (
        value(
            metered,
            "conduit_http_requests_total",
            route=metrics.UNMATCHED,
            method="OTHER",
            status="404",
        )
        == 1
    )


def test_a_cache_miss_then_a_hit_are_counted_with_the_cache_size(
    metered: Flask, metered_client: FlaskClient
) -> None:
    assert metered_client.get("/api/tags").headers["X-Cache"] == "miss"
    assert metered_client.get("/api/tags").headers["X-Cache"] == "hit"

    assert value(metered, "conduit_response_cache_lookups_total", result="miss") == 1
    assert value(metered, "conduit_response_cache_lookups_total", result="hit") == 1
    assert value(metered, "conduit_response_cache_entries") == 1
    assert (value(metered, "conduit_response_cache_bytes") or 0) > 0


def test_evictions_are_counted_when_the_cache_is_full(database_url: str, tmp_path: Path) -> None:
    # New answers enter probation, a fifth of the bytes (1,400): the empty tags
    # (~800 bytes as counted) and the empty list (~1,040) do not fit together.
    with app_with_tables(database_url, METRICS_PORT=PORT, RESPONSE_CACHE_MAX_BYTES="7000") as app:
        wait_until_listening(app)
        client = app.test_client()
        client.get("/api/tags")
        client.get("/api/articles")  # larger than what is left: the tags go

        assert value(app, "conduit_response_cache_evictions_total") == 1


def test_the_change_feed_vouches_and_its_last_change_is_a_time(
    metered: Flask, metered_client: FlaskClient
) -> None:
    user = register(metered_client)
    create_article(metered_client, user)
    metered_client.get("/api/articles", headers=auth(user))

    assert value(metered, "conduit_change_feed_online_processes") == 1
    assert value(metered, "conduit_change_feed_offline_processes") == 0
    assert (value(metered, "conduit_change_feed_last_change_timestamp_seconds") or 0) > 1.7e9


def test_a_throttled_answer_is_counted_by_route(
    metered: Flask, metered_client: FlaskClient
) -> None:
    metered.add_url_rule("/api/limited", "limited", lambda: ("slow down", 429))

    metered_client.get("/api/limited")

    assert value(metered, "conduit_http_throttled_total", route="/api/limited") == 1


def test_the_pool_counts_connections_lent_and_checkouts_that_timed_out(database_url: str) -> None:
    options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.1}
    with app_with_tables(
        database_url, METRICS_PORT=PORT, SQLALCHEMY_ENGINE_OPTIONS=options, RESPONSE_CACHE="off"
    ) as app:
        client = app.test_client()
        with app.app_context(), db.engine.connect():
            assert value(app, "conduit_db_pool_checked_out") == 1

            response = client.get("/api/articles")

        assert response.status_code == 503
        assert value(app, "conduit_db_pool_timeouts_total") == 1
        assert value(app, "conduit_db_pool_checked_out") == 0
        assert value(app, "conduit_db_pool_size") == 1


@pytest.mark.parametrize("engine", [databases.POSTGRESQL, databases.SQLITE])
def test_a_database_that_cannot_be_reached_is_counted_as_503(
    engine: str, tmp_path: Path, closed_port: int
) -> None:
    url = (
        f"postgresql://postgres@127.0.0.1:{closed_port}/conduit"
        if engine == "postgresql"
        else f"sqlite:///{tmp_path / 'missing' / 'conduit.db'}"
    )
    app = make_app(url, METRICS_PORT=PORT)
    try:
        app.test_client().post(
            "/api/users/login", json={"user": {"email": "a@b.co", "password": "x" * 8}}
        )

        assert (
            value(
                app,
                "conduit_http_requests_total",
                route="/api/users/login",
                method="POST",
                status="503",
            )
            == 1
        )
    finally:
        close_app(app)


def test_counters_verify_leaves_the_drift_for_the_metrics(
    metered: Flask, metered_client: FlaskClient
) -> None:
    user = register(metered_client)
    create_article(metered_client, user)
    runner = metered.test_cli_runner()

    assert runner.invoke(args=["counters", "verify"]).exit_code == 0
    assert value(metered, "conduit_counters_drift") == 0
    with metered.app_context():
        db.session.execute(text("UPDATE counters SET value = value + 3"))
        db.session.commit()
    assert runner.invoke(args=["counters", "verify"]).exit_code == 1

    assert value(metered, "conduit_counters_drift") == 1
    assert (value(metered, "conduit_counters_verified_timestamp_seconds") or 0) > 1.7e9
    assert (Path(metered.config["METRICS_DIRECTORY"]) / counters.METRICS_FILE).is_file()


def test_counters_verify_leaves_the_pending_deltas_for_the_metrics(
    metered: Flask, metered_client: FlaskClient
) -> None:
    create_article(metered_client, register(metered_client), tagList=["a"])
    runner = metered.test_cli_runner()
    assert runner.invoke(args=["counters", "verify"]).exit_code == 0
    assert value(metered, "conduit_counters_pending_deltas") == 0
    with metered.app_context():
        deltas = "INSERT INTO counter_deltas (tag_id, delta) VALUES (NULL, 1), (NULL, -1)"
        db.session.execute(text(deltas))
        db.session.commit()

    assert runner.invoke(args=["counters", "verify"]).exit_code == 0

    assert value(metered, "conduit_counters_pending_deltas") == 2


def test_one_process_serves_its_own_metrics_on_the_metrics_port(
    metered: Flask, metered_client: FlaskClient
) -> None:
    metered_client.get("/api/tags")
    port = metrics.serve(metered, "127.0.0.1", 0)
    try:
        scraped = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    finally:
        metrics.stop()

    key = (("method", "GET"), ("route", "/api/tags"), ("status", "200"))
    assert samples(scraped.text)[("conduit_http_requests_total", key)] == 1
    # Not metrics on the API's own port: a 404, or the web app's page when it is built.
    with metered_client.get("/metrics") as on_api_port:
        assert b"conduit_http_requests_total" not in on_api_port.get_data()


def test_the_schema_is_not_at_head_without_migrations(metered: Flask) -> None:
    assert value(metered, "conduit_schema_at_head") == 0


# --- gunicorn, two workers ------------------------------------------------------


def metrics_url(log: str) -> str:
    """Where the master serves the metrics: its ``Metrics at:`` start-up line."""
    found = re.search(r"Metrics at: (http://[\d.]+:\d+/metrics)", log)
    assert found, log
    return found.group(1)


@pytest.mark.served  # gunicorn, two workers
@pytest.mark.parametrize("engine", databases.PARAMS)
def test_two_workers_are_summed_on_the_metrics_port_and_never_on_the_api_port(
    engine: str, tmp_path: Path, worker_id: str
) -> None:
    directory = tmp_path / "samples"
    with served_on(
        engine,
        tmp_path,
        f"metrics_{worker_id}",
        METRICS_PORT="0",  # the kernel picks a free one
        METRICS_DIRECTORY=str(directory),
        GUNICORN_WORKER_CLASS="sync",  # one request at a time each: both workers get some
        RESPONSE_CACHE="off",
        SECRET_KEY=TEST_SECRET_KEY,
    ) as served:
        calls = 40
        storm([lambda: requests.get(served.base_url + "/api/tags", timeout=30)] * calls)
        scraped = requests.get(metrics_url(served.server.log()), timeout=30)
        on_api_port = requests.get(served.base_url + "/metrics", timeout=30)

    found = samples(scraped.text)
    key = (("method", "GET"), ("route", "/api/tags"), ("status", "200"))
    assert found[("conduit_http_requests_total", key)] == calls
    assert found[("conduit_schema_at_head", ())] == 1
    writers = {int(path.stem.rsplit("_", 1)[1]) for path in directory.glob("counter_*.db")}
    assert len(writers - {served.server.process.pid}) == 2  # both workers answered some
    assert "conduit_http_requests_total" not in on_api_port.text  # a 404, or the web app's page
