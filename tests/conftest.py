"""Fixtures: an app per test on a fresh database, SQLite and PostgreSQL alike.

Every test that asks for ``app`` or ``client`` runs twice, once per database
(``--databases sqlite`` keeps the SQLite half: ``make test-quick``).
PostgreSQL tests skip with instructions when the server is unreachable, unless
``CI=true``, where that is a failure. The suite is sealed from the developer's
``.env`` and exported settings (tests/environment.py).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from app.extensions import db
from tests import databases, environment, factories
from tests import replication as replication_pair
from tests.apps import app_with_tables, apps_on, served_on
from tests.databases import statements_run
from tests.serving import ServedApp

environment.seal()

DATABASES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str]:
    """One throwaway PostgreSQL database for this test session (or xdist worker)."""
    databases.require_postgres()
    with databases.throwaway_postgres_database(worker_id) as url:
        yield url


@pytest.fixture(scope="session")
def replication() -> Iterator[replication_pair.Pair]:
    """A PostgreSQL primary and a streaming replica of its own (tests/replication.py).

    Started once per session (per xdist worker) on free ports; skips when it
    cannot be started here, fails under ``CI=true``.
    """
    reason = replication_pair.unavailable_reason()
    if reason is not None:
        if databases.IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        with replication_pair.primary_and_replica() as pair:
            yield pair
    except RuntimeError as error:
        if databases.IN_CI:
            pytest.fail(str(error), pytrace=False)
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def postgres_icu_url(worker_id: str) -> Iterator[str]:
    """One throwaway PostgreSQL database collating with ICU ``en-US``, for this session."""
    databases.require_postgres()
    with databases.throwaway_postgres_database(
        f"icu_{worker_id}", icu_locale=databases.ICU_LOCALE
    ) as url:
        yield url


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "main"


@pytest.fixture(params=databases.PARAMS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty database for one test: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conduit.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=(*databases.PARAMS, databases.POSTGRESQL_ICU))
def collating_client(request: pytest.FixtureRequest, tmp_path) -> Iterator[FlaskClient]:
    """A client on SQLite, PostgreSQL (C.UTF-8) or PostgreSQL collating with ICU ``en-US``.

    For answers that must not depend on the database's collation (text order).
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'conduit.db'}"
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = request.getfixturevalue("postgres_icu_url")
    with app_with_tables(url) as app:
        yield app.test_client()


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    with app_with_tables(database_url) as app:
        yield app


# Small limits, so a test reaches them in a few requests.
THROTTLING = {
    "RATELIMIT_ENABLED": "on",
    "LOGIN_RATE_LIMIT_PER_ADDRESS": "3 per minute",
    "LOGIN_RATE_LIMIT_PER_ACCOUNT": "5 per hour",
    "REGISTRATION_RATE_LIMIT": "3 per hour",
}


@pytest.fixture
def throttled_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """``throttled_app(**settings)``: an app throttling with :data:`THROTTLING`'s small limits.

    Every app it makes in one test shares the test's database (tables created once).
    """
    with apps_on(database_url, **THROTTLING) as make:
        yield make


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening, for the test: connections are refused.

    Held, not merely found free, so no other process can start listening on it.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


@pytest.fixture
def redis_url() -> str:
    """The test Redis (``TEST_REDIS_URL``); skips when unreachable, fails under ``CI=true``."""
    reason = databases.redis_unavailable_reason()
    if reason is not None:
        if databases.IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return databases.REDIS_URL


@pytest.fixture
def rate_limit_prefix(worker_id: str) -> Iterator[str]:
    """A ``RATELIMIT_KEY_PREFIX`` for one test; its Redis keys are removed afterwards."""
    prefix = f"test-{worker_id}-{uuid.uuid4().hex}"
    yield prefix
    if databases.redis_unavailable_reason() is None:
        databases.remove_redis_keys(f"*/{prefix}/*")


@pytest.fixture(params=databases.PARAMS)
def throttled_served_app(
    request: pytest.FixtureRequest,
    tmp_path,
    worker_id: str,
    redis_url: str,
    rate_limit_prefix: str,
) -> Iterator[ServedApp]:
    """gunicorn (2 processes) throttling with Redis storage: 3 failed logins a minute per address.

    Its counts are in Redis under the test's ``rate_limit_prefix``.
    """
    with served_on(
        request.param,
        tmp_path,
        f"throttled_{worker_id}",
        **THROTTLING,
        RATELIMIT_STORAGE_URI=redis_url,
        RATELIMIT_KEY_PREFIX=rate_limit_prefix,
    ) as served:
        yield served


@pytest.fixture(params=databases.PARAMS)
def served_app(request: pytest.FixtureRequest, tmp_path, worker_id: str) -> Iterator[ServedApp]:
    """The app served by gunicorn (2 processes, 4 threads each) on its own migrated database.

    A SQLite file or a throwaway PostgreSQL database, created for this test and
    dropped after it, so a concurrency test can assert the final state.
    """
    with served_on(request.param, tmp_path, f"served_{worker_id}") as served:
        yield served


@pytest.fixture(scope="module", params=databases.PARAMS)
def served_module(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[ServedApp]:
    """Like ``served_app``, but one server for a whole module (tests that write nothing shared).

    For socket-level tests (tests/test_served_edges.py) that would otherwise
    start a gunicorn per test.
    """
    workdir = tmp_path_factory.mktemp("served")
    label = f"served_module_{worker_id}"
    with served_on(
        request.param, workdir, label, WEB_CONCURRENCY="1", GUNICORN_THREADS="2"
    ) as served:
        yield served


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth_headers() -> Callable[[dict[str, Any]], dict[str, str]]:
    """``auth_headers(user)``: the Authorization header for a registered user."""

    def headers(user: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Token {user['token']}"}

    return headers


@pytest.fixture
def jake(client: FlaskClient) -> dict[str, Any]:
    """A registered user named jake (the ``user`` object, with its token)."""
    return factories.register(client, username="jake")


@pytest.fixture
def anna(client: FlaskClient) -> dict[str, Any]:
    """A registered user named anna."""
    return factories.register(client, username="anna")


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app: Flask) -> Callable[[], Any]:
    """``with count_queries() as counter:`` records the SQL statements run inside.

    Transaction control is left out (``tests.databases.statements_run``).
    """

    @contextmanager
    def counting() -> Iterator[QueryCounter]:
        counter = QueryCounter()
        with statements_run(app, transaction_control=False) as counter.statements:
            yield counter

    return counting


@pytest.fixture
def sql(app: Flask) -> Callable[[str], list[Any]]:
    """Run raw SQL against the test database (to check what was stored)."""

    def run(statement: str, **params: Any) -> list[Any]:
        with app.app_context():
            return list(db.session.execute(text(statement), params))

    return run


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--databases",
        default=",".join(DATABASES),
        help="comma-separated databases to run on (default: sqlite,postgresql)",
    )


def _selected_databases(config: pytest.Config) -> set[str]:
    chosen = {name.strip() for name in str(config.getoption("--databases")).split(",")}
    unknown = chosen - set(DATABASES)
    if unknown:
        raise pytest.UsageError(f"--databases: unknown {', '.join(sorted(unknown))}")
    return chosen


# Fixtures that start a server (gunicorn, the development server): their tests
# are marked ``served`` (make test-quick leaves them out).
SERVED_FIXTURES = {"served_app", "served_module", "throttled_served_app", "dev_server"}
# Fixtures on the test PostgreSQL server itself, not parametrized: their tests are PostgreSQL's.
POSTGRES_FIXTURES = {"postgres_url", "postgres_icu_url"}
# First match wins: a test that needs the PostgreSQL server is PostgreSQL's whatever else it has.
DATABASE_MARKERS = {"postgresql_only": "postgresql", "postgresql": "postgresql", "sqlite": "sqlite"}


def database_of(item: pytest.Item) -> str | None:
    """The database a collected test runs on, by its markers; ``None``: no database, or any."""
    for marker, database in DATABASE_MARKERS.items():
        if item.get_closest_marker(marker):
            return database
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark by fixture (``served``, ``postgresql``), then deselect what ``--databases`` leaves out.

    A test runs on a database by its marker alone: each database-parametrized
    fixture marks its halves (tests/databases.py: ``SQLITE``, ``POSTGRESQL``).
    A parameter named like a database but unmarked is a collection error, so
    a new fixture cannot slip PostgreSQL tests into ``--databases sqlite``.
    """
    unmarked = []
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVED_FIXTURES:
            item.add_marker(pytest.mark.served)
        if fixtures & POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgresql)
        callspec = getattr(item, "callspec", None)
        named = {
            value
            for value in (callspec.params.values() if callspec else ())
            if isinstance(value, str) and value in ("sqlite", "postgresql", "postgresql-icu")
        }
        if named and database_of(item) is None:
            unmarked.append(item.nodeid)
    if unmarked:
        raise pytest.UsageError(
            "parametrized on a database without its marker (use tests/databases.py's "
            "SQLITE / POSTGRESQL params): " + ", ".join(unmarked[:5])
        )
    chosen = _selected_databases(config)
    if chosen == set(DATABASES):
        return
    kept, dropped = [], []
    for item in items:
        database = database_of(item)
        (kept if database is None or database in chosen else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> str:
    chosen = _selected_databases(config)
    postgres = f"postgresql ({databases.POSTGRES_URL})" if "postgresql" in chosen else ""
    names = ", ".join(filter(None, ["sqlite" if "sqlite" in chosen else "", postgres]))
    return f"databases: {names}; CI={os.environ.get('CI', '')}"
