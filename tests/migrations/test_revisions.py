"""Every revision in migrations/, on SQLite and PostgreSQL (pytest-alembic and our own checks).

The audit table (``migration_audit``) belongs to the tooling, not to the
schema: it records history, so it stays when the schema is downgraded to base,
as does Alembic's (then empty) ``alembic_version``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from pytest_alembic import MigrationContext as AlembicRunner
from pytest_alembic.tests import (  # noqa: F401  (collected here, on our fixtures)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import Engine, func, select, text

from app import MIGRATIONS_DIRECTORY
from app.db.audit import TOOLING_TABLES, audit_table
from app.db.history import read_head_file
from tests.migrations.flask_db import table_names

MIGRATIONS = Path(MIGRATIONS_DIRECTORY)


def revisions_oldest_first() -> list[str]:
    script = ScriptDirectory(str(MIGRATIONS))
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def test_head_file_names_the_single_head() -> None:
    assert read_head_file(MIGRATIONS) == list(ScriptDirectory(str(MIGRATIONS)).get_heads())


def test_revision_files_sort_in_history_order() -> None:
    script = ScriptDirectory(str(MIGRATIONS))
    by_name = sorted(script.walk_revisions(), key=lambda s: Path(s.path).name)
    assert [s.revision for s in by_name] == revisions_oldest_first()


def test_history_has_at_least_two_revisions() -> None:
    assert len(revisions_oldest_first()) >= 2


def test_stairway_each_revision_upgrades_downgrades_and_upgrades_again(
    alembic_runner: AlembicRunner,
) -> None:
    for revision in revisions_oldest_first():
        alembic_runner.migrate_up_to(revision)
        alembic_runner.migrate_down_one()
        alembic_runner.migrate_up_one()
        assert alembic_runner.current == revision


def test_downgrade_to_base_leaves_only_the_tooling_tables(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    alembic_runner.migrate_up_to("heads")
    alembic_runner.migrate_down_to("base")

    assert table_names(alembic_engine) <= TOOLING_TABLES
    with alembic_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0


def test_each_step_is_recorded_in_the_audit_table(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    alembic_runner.migrate_up_to("heads")
    alembic_runner.migrate_down_one()

    with alembic_engine.connect() as connection:
        rows = connection.execute(
            select(audit_table.c.revision, audit_table.c.direction, audit_table.c.checksum)
        ).all()
    revisions = revisions_oldest_first()
    assert [(r, d) for r, d, _ in rows] == [
        *((revision, "upgrade") for revision in revisions),
        (revisions[-1], "downgrade"),
    ]
    assert all(len(checksum) == 64 for _, _, checksum in rows)


def test_rows_written_at_the_first_revision_survive_every_later_one(
    alembic_runner: AlembicRunner, alembic_engine: Engine
) -> None:
    first, *later = revisions_oldest_first()
    alembic_runner.migrate_up_to(first)
    now = datetime.now(UTC)
    with alembic_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, email, password_hash, created_at, updated_at)"
                " VALUES (1, 'jake', 'jake@example.com', 'x', :now, :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO articles"
                " (id, slug, title, description, body, author_id, created_at, updated_at)"
                " VALUES (1, 'hello', 'Hello', 'd', 'b', 1, :now, :now)"
            ),
            {"now": now},
        )
        connection.execute(text("INSERT INTO tags (id, name) VALUES (1, 'dragons')"))
        connection.execute(text("INSERT INTO article_tags (article_id, tag_id) VALUES (1, 1)"))
        connection.execute(
            text(
                "INSERT INTO comments (id, body, article_id, author_id, created_at, updated_at)"
                " VALUES (1, 'nice', 1, 1, :now, :now)"
            ),
            {"now": now},
        )

    for revision in later:
        alembic_runner.migrate_up_to(revision)
        with alembic_engine.connect() as connection:
            for table in ("users", "articles", "tags", "article_tags", "comments"):
                count = connection.execute(select(func.count()).select_from(text(table)))
                assert count.scalar() == 1, f"{table} lost rows at {revision}"
