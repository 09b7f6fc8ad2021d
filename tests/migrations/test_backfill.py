"""Batched backfills (app/db/backfill.py) in a data migration, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, text

from app.db.backfill import backfill
from app.db.exit_codes import ExitCode
from tests.migrations.flask_db import AddRevision, FlaskDb

ROWS = 2_500
BACKFILL_REVISION = """
import os
from app.db.backfill import backfill

tags = sa.table("tags", sa.column("id", sa.Integer), sa.column("name", sa.Text),
                sa.column("label", sa.Text))

def interrupt(line):
    print(line)
    if os.environ.get("INTERRUPT_BACKFILL"):
        raise RuntimeError("interrupted")

backfill(tags, {"label": sa.func.upper(tags.c.name)}, pending=tags.c.label.is_(None),
         batch_size=1_000, pause=0, echo=interrupt)
"""


@pytest.fixture
def tags_to_backfill(
    flask_db: FlaskDb, add_revision: AddRevision, engine_for, empty_database: str
) -> Engine:
    """2,500 tags with an empty ``label`` column, and a pending revision that backfills it."""
    add_revision("label", "op.add_column('tags', sa.Column('label', sa.Text()))")
    assert flask_db("run").exit_code == ExitCode.OK
    engine = engine_for(empty_database)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO tags (name, article_count) VALUES (:name, 0)"),
            [{"name": f"tag{n:05}"} for n in range(ROWS)],
        )
    add_revision("fill", BACKFILL_REVISION)
    return engine


def labelled(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(label) FROM tags")).scalar_one()


def test_a_data_migration_backfills_every_row_in_batches_with_progress(
    flask_db: FlaskDb, tags_to_backfill: Engine
) -> None:
    result = flask_db("run")

    assert result.exit_code == ExitCode.OK, result.output
    assert "backfill tags: 1,000/2,500 rows (40%)" in result.output
    assert "backfill tags: 2,500/2,500 rows (100%)" in result.output
    assert labelled(tags_to_backfill) == ROWS


def test_each_batch_is_committed_so_an_interrupted_backfill_keeps_its_batches(
    flask_db: FlaskDb, tags_to_backfill: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERRUPT_BACKFILL", "1")

    interrupted = flask_db("run")

    assert interrupted.exit_code == ExitCode.FAILED
    assert "failed: RuntimeError: interrupted" in interrupted.output
    assert labelled(tags_to_backfill) == 1_000


def test_an_interrupted_backfill_resumes_without_redoing_finished_batches(
    flask_db: FlaskDb, tags_to_backfill: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERRUPT_BACKFILL", "1")
    assert flask_db("run").exit_code == ExitCode.FAILED
    monkeypatch.delenv("INTERRUPT_BACKFILL")

    resumed = flask_db("run")

    assert resumed.exit_code == ExitCode.OK, resumed.output
    assert "backfill tags: 1,000/1,500 rows" in resumed.output
    assert "backfill tags: 1,500/1,500 rows (100%)" in resumed.output
    assert labelled(tags_to_backfill) == ROWS


def test_the_data_migration_template_uses_the_backfill_helper(
    flask_db: FlaskDb, migrations_dir: Path
) -> None:
    flask_db("create", "FillLabels", "--data")

    created = sorted((migrations_dir / "versions").glob("*_fill_labels.py"))[-1].read_text()

    assert "from app.db.backfill import backfill" in created
    assert "pending=users.c.bio.is_(None)" in created


def test_outside_a_revision_a_backfill_commits_each_batch_on_the_given_connection(
    tags_to_backfill: Engine,
) -> None:
    tags = sa.table("tags", sa.column("id", sa.Integer), sa.column("label", sa.Text))
    lines: list[str] = []

    def stop_after_first_batch(line: str) -> None:
        lines.append(line)
        raise KeyboardInterrupt

    with tags_to_backfill.connect() as connection, pytest.raises(KeyboardInterrupt):
        backfill(
            tags,
            {"label": "x"},
            pending=tags.c.label.is_(None),
            batch_size=1_000,
            connection=connection,
            echo=stop_after_first_batch,
        )

    assert lines == [lines[0]] and lines[0].startswith("backfill tags: 1,000/2,500 rows (40%), ")
    assert labelled(tags_to_backfill) == 1_000
