"""The served half of the previous-release gate: the Postman suite against code on a schema."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest

from scripts import release_conformance, throwaway
from tests.databases import IN_CI, throwaway_postgres_database
from tests.environment import PROJECT_ROOT, REALWORLD_API_DIR, realworld_api_file

pytestmark = pytest.mark.postgresql_only
SETTINGS = {"APP_ENV": "production", "SECRET_KEY": "s" * 40}


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A PostgreSQL database at the head; the Postman collection's folder for the suite."""
    _path, missing = realworld_api_file("Conduit.postman_collection.json")
    if missing:
        pytest.fail(missing) if IN_CI else pytest.skip(missing)
    monkeypatch.setenv("REALWORLD_API_DIR", str(REALWORLD_API_DIR))
    with throwaway_postgres_database("release") as url:
        throwaway.migrate(url, SETTINGS)
        yield url


def test_code_that_fits_the_schema_passes_the_suite(database: str) -> None:
    assert release_conformance.suite_passes("the code", PROJECT_ROOT, database, SETTINGS, "heads")


def test_code_that_maps_a_renamed_column_fails_printing_the_failed_requests(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("ALTER TABLE users RENAME COLUMN bio TO biography")

    passed = release_conformance.suite_passes("the code", PROJECT_ROOT, database, SETTINGS, "heads")

    report = capsys.readouterr().err
    assert not passed
    assert "failed request: Auth / Register" in report
    assert re.search(r"server error: schema drift: column .*bio.* does not exist", report)
