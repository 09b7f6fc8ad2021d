"""Reads from a streaming replica, with exact read-your-writes (app/data/replicas.py).

On a real PostgreSQL primary and replica (tests/replication.py). In testing,
``X-Database-Served-By`` names the server a safe request read from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.data import replicas
from tests.apps import app_with_tables
from tests.factories import auth, create_article, register
from tests.listening import DEADLINE_SECONDS, wait_until_listening
from tests.replication import Pair

pytestmark = pytest.mark.postgresql_only

SERVED_BY = replicas.SERVED_BY_HEADER
POSITION = replicas.HEADER


def _router(app: Flask) -> replicas.Replicas:
    router = replicas.current_or_none(app)
    assert router is not None
    return router


def _caught_up(app: Flask, position: str | None = None) -> bool:
    """Whether the app's router saw the replica serving, at ``position`` or past it."""
    router = _router(app)
    router._ensure_checking()
    (replica,) = router.replicas
    wanted = replicas.parse_lsn(position) if position else 0
    return replica.healthy and replica.replayed >= (wanted or 0)


@pytest.fixture
def replicated(replication: Pair) -> Iterator[tuple[Flask, Pair]]:
    """An app on the pair's primary with its replica in ``DATABASE_REPLICA_URLS``."""
    yield from _replicated_app(replication)


@pytest.fixture
def replicated_with_small_lag_limit(replication: Pair) -> Iterator[tuple[Flask, Pair]]:
    """The same, with a replica dropped once it is more than 1 byte of WAL behind."""
    yield from _replicated_app(replication, DATABASE_REPLICA_MAX_LAG_BYTES="1")


def _replicated_app(pair: Pair, **settings: Any) -> Iterator[tuple[Flask, Pair]]:
    with app_with_tables(
        pair.primary.url,
        **{
            "DATABASE_REPLICA_URLS": pair.replica.url,
            "DATABASE_REPLICA_CHECK_SECONDS": 0.05,
            **settings,
        },
    ) as app:
        pair.wait_for_replay()
        assert replicas.wait_until(lambda: _caught_up(app), seconds=DEADLINE_SECONDS)
        if "change_feed" in app.extensions:
            wait_until_listening(app)
        try:
            yield app, pair
        finally:
            pair.resume_replay()


@pytest.fixture
def client(replicated: tuple[Flask, Pair]) -> FlaskClient:
    return replicated[0].test_client()


def _replica_name(pair: Pair) -> str:
    return f"127.0.0.1:{pair.replica.port}"


def test_a_safe_request_reads_from_the_replica(client, replicated):
    response = client.get("/api/tags")

    assert response.status_code == 200
    assert response.headers[SERVED_BY] == _replica_name(replicated[1])


def test_a_write_goes_to_the_primary_and_answers_its_wal_position(client):
    response = client.post(
        "/api/users",
        json={"user": {"username": "jake", "email": "jake@example.com", "password": "x" * 12}},
    )

    assert response.status_code == 201
    assert replicas.parse_lsn(response.headers[POSITION]) is not None


def test_a_client_that_wrote_reads_from_the_primary_while_the_replica_lags(client, replicated):
    replicated[1].pause_replay()
    jake = register(client, username="jake")
    position = client.put(
        "/api/user", json={"user": {"bio": "written"}}, headers=auth(jake)
    ).headers[POSITION]

    mine = client.get("/api/profiles/jake", headers={POSITION: position})

    assert mine.headers[SERVED_BY] == "primary"
    assert mine.get_json()["profile"]["bio"] == "written"


def test_a_client_that_wrote_nothing_reads_from_the_lagging_replica(client, replicated):
    replicated[1].pause_replay()
    register(client, username="jake")

    theirs = client.get("/api/profiles/jake")

    assert theirs.headers[SERVED_BY] == _replica_name(replicated[1])
    assert theirs.status_code == 404  # the replica has not replayed jake yet


def test_a_client_reads_from_the_replica_once_it_replayed_the_write(client, replicated):
    app, pair = replicated
    position = client.post(
        "/api/users",
        json={"user": {"username": "jake", "email": "jake@example.com", "password": "x" * 12}},
    ).headers[POSITION]
    pair.wait_for_replay()
    assert replicas.wait_until(lambda: _caught_up(app, position), seconds=DEADLINE_SECONDS)

    response = client.get("/api/profiles/jake", headers={POSITION: position})

    assert response.headers[SERVED_BY] == _replica_name(pair)
    assert response.status_code == 200


@pytest.mark.parametrize("sent", ["yesterday", "0/", "1/2/3", "G/0", "123456789/0"])
def test_a_malformed_position_is_refused_in_the_envelope(client, sent):
    response = client.get("/api/tags", headers={POSITION: sent})

    assert response.status_code == 400
    assert POSITION in response.get_json()["errors"]


def test_an_answer_read_from_a_lagging_replica_is_not_cached(client, replicated):
    pair = replicated[1]
    jake = register(client, username="jake")
    pair.wait_for_replay()
    pair.pause_replay()
    create_article(client, jake)

    stale = client.get("/api/articles")
    again = client.get("/api/articles")

    assert stale.headers[SERVED_BY] == _replica_name(pair)
    assert stale.get_json()["articlesCount"] == 0  # what the lagging replica says
    assert again.headers["X-Cache"] == "miss"  # and it was not stored


def test_an_answer_from_a_replica_that_replayed_the_writes_is_cached(client, replicated):
    app, pair = replicated
    jake = register(client, username="jake")
    create_article(client, jake)
    pair.wait_for_replay()
    assert replicas.wait_until(
        lambda: _caught_up(app, replicas.format_lsn(app.extensions["change_feed"].position())),
        seconds=DEADLINE_SECONDS,
    )

    first = client.get("/api/articles")
    second = client.get("/api/articles")

    assert first.get_json()["articlesCount"] == 1
    assert second.headers["X-Cache"] == "hit"


def test_a_replica_past_the_lag_limit_leaves_the_rotation_and_returns(
    replicated_with_small_lag_limit,
):
    app, pair = replicated_with_small_lag_limit
    client = app.test_client()
    pair.pause_replay()
    register(client, username="jake")
    assert replicas.wait_until(lambda: not _router(app).replicas[0].healthy, seconds=1)

    lagging = client.get("/api/tags")
    pair.resume_replay()
    back = replicas.wait_until(lambda: _caught_up(app), seconds=DEADLINE_SECONDS)

    assert lagging.headers[SERVED_BY] == "primary"
    assert back


def _migrated(app: Flask) -> None:
    """Mark the tables made by ``create_all`` as at the migrations' head, for ``/readyz``."""
    from flask_migrate import stamp

    with app.app_context():
        stamp()


def test_a_replica_that_is_down_leaves_the_rotation_within_a_second(client, replicated):
    app, pair = replicated
    _migrated(app)
    pair.stop_server(pair.replica)
    try:
        dropped = replicas.wait_until(lambda: not _router(app).replicas[0].healthy, seconds=1)
        response = client.get("/api/tags")
        ready = client.get("/readyz").get_json()
    finally:
        pair.start_server(pair.replica)
        pair.wait_until_streaming()

    assert dropped
    assert response.status_code == 200
    assert response.headers[SERVED_BY] == "primary"
    assert ready["replicas"] == [
        {"name": _replica_name(pair), "serving": False, "problem": ready["replicas"][0]["problem"]}
    ]
    assert "not reachable" in ready["replicas"][0]["problem"]


def test_a_restarted_replica_returns_to_the_rotation(client, replicated):
    app, pair = replicated
    pair.stop_server(pair.replica)
    assert replicas.wait_until(lambda: not _router(app).replicas[0].healthy, seconds=1)
    pair.start_server(pair.replica)
    pair.wait_until_streaming()

    assert replicas.wait_until(lambda: _caught_up(app), seconds=DEADLINE_SECONDS)
    assert client.get("/api/tags").headers[SERVED_BY] == _replica_name(pair)


def test_readiness_lists_the_replicas_that_serve(client, replicated):
    _migrated(replicated[0])
    response = client.get("/readyz")

    assert response.get_json()["replicas"] == [
        {"name": _replica_name(replicated[1]), "serving": True}
    ]


def test_a_promoted_replica_leaves_the_rotation_within_a_second(replication):
    doomed = replication.add_replica("promoted")
    with app_with_tables(
        replication.primary.url,
        DATABASE_REPLICA_URLS=doomed.url,
        DATABASE_REPLICA_CHECK_SECONDS=0.05,
    ) as app:
        client = app.test_client()
        assert replicas.wait_until(lambda: _caught_up(app), seconds=DEADLINE_SECONDS)
        replication.promote(doomed)

        dropped = replicas.wait_until(lambda: not _router(app).replicas[0].healthy, seconds=1)
        response = client.get("/api/tags")

    assert dropped
    assert "promoted" in _router(app).replicas[0].problem
    assert response.headers[SERVED_BY] == "primary"


def test_a_position_no_replica_has_replayed_reads_the_primary_past_the_cache(client):
    client.get("/api/articles")
    assert client.get("/api/articles").headers["X-Cache"] == "hit"

    response = client.get("/api/articles", headers={POSITION: "FFFFFFFF/0"})

    assert response.status_code == 200
    assert response.headers[SERVED_BY] == "primary"
    assert response.headers["X-Cache"] == "miss"


@pytest.fixture
def replicated_with_rare_checks(replication: Pair) -> Iterator[tuple[Flask, Pair]]:
    """The app with a check only every minute, and no response cache: what requests see
    between two checks."""
    yield from _replicated_app(replication, DATABASE_REPLICA_CHECK_SECONDS=60, RESPONSE_CACHE="off")


def test_a_request_that_loses_its_replica_takes_it_out_before_the_next_check(
    replicated_with_rare_checks,
):
    app, pair = replicated_with_rare_checks
    client = app.test_client()
    assert client.get("/api/tags").headers[SERVED_BY] == _replica_name(pair)
    pair.stop_server(pair.replica)
    try:
        failed = client.get("/api/tags")
        after = client.get("/api/tags")
    finally:
        pair.start_server(pair.replica)
        pair.wait_until_streaming()

    assert failed.status_code == 503
    assert failed.get_json() == {"errors": {"database": ["is not reachable, please retry"]}}
    assert after.status_code == 200
    assert after.headers[SERVED_BY] == "primary"


@pytest.fixture
def metered_replicated(replication: Pair, tmp_path: Path) -> Iterator[tuple[Flask, Pair]]:
    """The replicated app with metrics on (``METRICS_PORT``)."""
    yield from _replicated_app(
        replication, METRICS_PORT="9464", METRICS_DIRECTORY=str(tmp_path / "metrics")
    )


def _sample(app: Flask, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    from app.web import metrics

    for family in text_string_to_metric_families(metrics.exposition(app).decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_the_metrics_say_which_replicas_serve_and_where_reads_went(
    metered_replicated: tuple[Flask, Pair],
) -> None:
    app, pair = metered_replicated
    client = app.test_client()
    name = _replica_name(pair)

    assert client.get("/api/tags").headers[SERVED_BY] == name
    pair.pause_replay()
    jake = register(client, username="jake")
    position = client.put(
        "/api/user", json={"user": {"bio": "written"}}, headers=auth(jake)
    ).headers[POSITION]
    assert client.get("/api/profiles/jake", headers={POSITION: position}).headers[SERVED_BY] == (
        replicas.PRIMARY
    )

    assert _sample(app, "conduit_db_replica_serving", replica=name) == 1
    assert _sample(app, "conduit_db_reads_total", database=name) >= 1
    assert _sample(app, "conduit_db_reads_total", database=replicas.PRIMARY) >= 1
