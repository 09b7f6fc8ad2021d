"""The hot reads' queries use indexes, on PostgreSQL and on SQLite.

A dedicated database is migrated (the real indexes), seeded with enough rows
for the planner to prefer indexes where they exist, and every statement the
endpoints run is EXPLAINed: none may scan a big table sequentially.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event

from app import close_app
from app.data.seed import SeedResult, SeedSizes, seed
from app.extensions import db
from app.models import User
from app.tokens import create_token
from tests import databases
from tests.apps import make_app

# users is reached by primary key; with few rows the planner may hash it whole.
BIG_TABLES = {"articles", "article_tags", "favorites", "follows", "comments"}
SIZES = SeedSizes(
    users=1_000,
    articles=10_000,
    tags=30,
    tags_per_article=3,
    comments_per_article=1,
    follows_per_user=10,
    favorites_per_user=10,
)


@pytest.fixture(scope="module")
def seeded(postgres_url: str) -> Iterator[tuple[Flask, SeedResult]]:
    with databases.throwaway_postgres_database("plans") as url:
        app = make_app(url)
        with app.app_context():
            upgrade()
            result = seed(SIZES, random_seed=7)
        yield app, result
        close_app(app)


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in BIG_TABLES:
        found.append(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found += _seq_scans(child)
    return found


@pytest.fixture(scope="module")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, SeedResult]]:
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'plans.db'}")
    with app.app_context():
        upgrade()
        result = seed(SIZES, random_seed=7)
    yield app, result
    close_app(app)


def _sqlite_scans(details: list[str]) -> list[str]:
    """SQLite's ``EXPLAIN QUERY PLAN`` lines that read a big table (users too) without an index.

    SQLite joins by nested loops: a table scanned whole is scanned again for
    each outer row (``SCAN users``), never hashed once as PostgreSQL may.
    """
    found = []
    for detail in details:
        words = detail.split()
        if words[:1] == ["SCAN"] and words[1] in BIG_TABLES | {"users"} and "USING" not in words:
            found.append(detail)
    return found


def _statements_of(app: Flask, path: str, headers: dict[str, str]) -> list[tuple[str, Any]]:
    """Run the request; the statements it ran, with their parameters."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = app.test_client().get(path, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.get_json()
    if "articles" in response.get_json():
        assert response.get_json()["articles"], "the scenario should match some articles"
    return statements


def _explain_requests(app: Flask, path: str, headers: dict[str, str]) -> dict[str, list[str]]:
    """Run the request; EXPLAIN each statement it ran: {statement: [what reads a big table
    without an index]}."""
    statements = _statements_of(app, path, headers)
    scans = {}
    with app.app_context():
        connection = db.engine.raw_connection()
        sqlite = db.engine.dialect.name == "sqlite"
        try:
            cursor = connection.cursor()
            for statement, parameters in statements:
                key = " ".join(statement.split())[:300]
                if sqlite:
                    cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
                    scans[key] = _sqlite_scans([row[3] for row in cursor.fetchall()])
                    continue
                cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
                (document,) = cursor.fetchone()
                plan = (json.loads(document) if isinstance(document, str) else document)[0]
                scans[key] = _seq_scans(plan["Plan"])
        finally:
            connection.close()
    return scans


def _token(app: Flask, user_id: int) -> dict[str, str]:
    with app.app_context():
        return {"Authorization": f"Token {create_token(db.session.get(User, user_id))}"}


SCENARIOS = {
    "list": lambda r: "/api/articles",
    "list, second page": lambda r: "/api/articles?limit=20&offset=20",
    "tag filter, the most used tag": lambda r: f"/api/articles?tag={r.tag_names[0]}",
    "tag filter, a rarer tag": lambda r: f"/api/articles?tag={r.tag_names[-1]}",
    "favorited filter": lambda r: f"/api/articles?favorited={r.usernames[0]}",
    "author filter": lambda r: f"/api/articles?author={r.usernames[1]}",
    "feed": lambda r: "/api/articles/feed",
    "article": lambda r: f"/api/articles/{r.slugs[0]}",
    "comments": lambda r: f"/api/articles/{r.slugs[0]}/comments",
    "tags": lambda r: "/api/tags",
}
CASES = [(scenario, True) for scenario in SCENARIOS] + [
    (scenario, False)
    for scenario in SCENARIOS
    if scenario != "feed"  # the feed needs a token
]


def _assert_no_scans(seeded: tuple[Flask, SeedResult], scenario: str, authenticated: bool) -> None:
    app, result = seeded
    headers = _token(app, result.user_ids[0]) if authenticated else {}
    scans = _explain_requests(app, SCENARIOS[scenario](result), headers)
    offenders = {statement: tables for statement, tables in scans.items() if tables}
    assert not offenders, f"sequential scans in {scenario}: {offenders}"


@pytest.mark.postgresql_only
@pytest.mark.parametrize(("scenario", "authenticated"), CASES)
def test_hot_reads_do_not_scan_big_tables_on_postgresql(
    seeded: tuple[Flask, SeedResult], scenario: str, authenticated: bool
) -> None:
    _assert_no_scans(seeded, scenario, authenticated)


@pytest.mark.sqlite
@pytest.mark.parametrize(("scenario", "authenticated"), CASES)
def test_hot_reads_do_not_scan_big_tables_on_sqlite(
    seeded_sqlite: tuple[Flask, SeedResult], scenario: str, authenticated: bool
) -> None:
    _assert_no_scans(seeded_sqlite, scenario, authenticated)
