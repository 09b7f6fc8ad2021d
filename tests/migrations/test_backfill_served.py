"""A backfill of 1,000,000 rows on PostgreSQL while the served app keeps answering."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask

from app.db.exit_codes import ExitCode
from tests.apps import served_on
from tests.migrations.flask_db import AddRevision, cli
from tests.serving import ServedApp

pytestmark = pytest.mark.postgresql_only

ROWS = 1_000_000
FILL = """
import os
from app.db.backfill import backfill

comments = sa.table("comments", sa.column("id", sa.Integer), sa.column("body", sa.Text),
                    sa.column("body_length", sa.Integer))
lines = []

def interrupt(line):
    print(line)
    lines.append(line)
    if os.environ.get("INTERRUPT_BACKFILL") and len(lines) == 3:
        raise RuntimeError("interrupted")

backfill(comments, {"body_length": sa.func.length(comments.c.body)},
         pending=comments.c.body_length.is_(None), batch_size=20_000, pause=0.01, echo=interrupt)
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedApp]:
    with served_on("postgresql", tmp_path, "backfill") as served:
        yield served


@pytest.fixture
def million_comments(served: ServedApp) -> str:
    """A million comments on one article (generate_series, not the API); returns its slug."""
    author = served.register("bulk")
    client = served.client(author)
    article = {"title": "Bulk", "description": "d", "body": "b", "tagList": []}
    slug = client.post("/api/articles", json={"article": article}).json()["article"]["slug"]
    client.close()
    with psycopg.connect(served.database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO comments (body, article_id, author_id, created_at, updated_at) "
            "SELECT 'comment number ' || g, a.id, a.author_id, now(), now() "
            "FROM generate_series(1, %s) g, articles a WHERE a.slug = %s",
            (ROWS, slug),
        )
    return slug


class Traffic:
    """Reads and writes against the served app from a thread, until stopped."""

    def __init__(self, served: ServedApp, slug: str) -> None:
        self.served, self.slug = served, slug
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        user = self.served.register("reader")
        client = self.served.client(user)
        n = 0
        while not self.stop.is_set():
            n += 1
            if n % 5 == 0:
                article = {"title": f"During {n}", "description": "d", "body": "b"}
                response = client.post("/api/articles", json={"article": article})
            else:
                response = client.get(f"/api/articles/{self.slug}" if n % 2 else "/api/articles")
            self.statuses.append(response.status_code)
        client.close()

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def pending(served: ServedApp) -> int:
    with psycopg.connect(served.database_url) as connection:
        row = connection.execute("SELECT count(*) FROM comments WHERE body_length IS NULL")
        return int(row.fetchone()[0])  # type: ignore[index]


def test_a_million_row_backfill_resumes_and_finishes_while_requests_succeed(
    served: ServedApp,
    million_comments: str,
    app_for: Callable[..., Flask],
    migrations_dir: Path,
    add_revision: AddRevision,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_revision("length", "op.add_column('comments', sa.Column('body_length', sa.Integer()))")
    add_revision("fill", FILL)
    flask_db = cli(app_for(served.database_url, migrations_dir))

    with Traffic(served, million_comments) as traffic:
        monkeypatch.setenv("INTERRUPT_BACKFILL", "1")
        interrupted = flask_db("run")
        left = pending(served)
        monkeypatch.delenv("INTERRUPT_BACKFILL")
        resumed = flask_db("run")

    assert "failed: RuntimeError: interrupted" in interrupted.output
    assert 0 < left < ROWS
    assert resumed.exit_code == ExitCode.OK, resumed.output
    assert f"/{left:,} rows" in resumed.output.splitlines()[0]  # only what was left
    assert f"backfill comments: {left:,}/{left:,} rows (100%)" in resumed.output
    assert pending(served) == 0
    assert traffic.statuses and set(traffic.statuses) <= {200, 201}, set(traffic.statuses)
