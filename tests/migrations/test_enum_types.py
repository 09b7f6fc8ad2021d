"""PostgreSQL enum types: generated revisions create them before use and drop them on the way back.

The examples from issue 9: adding an ``Enum`` column to a model (before:
no ``CREATE TYPE``, ``run`` failed with "type … does not exist"), and a new
model with an ``Enum`` column (before: ``revert`` left the type behind and the
next ``run`` failed with "type … already exists"). Both run, revert and run
again, on SQLite and PostgreSQL, and the gate runs that loop on both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Column

from app.db.exit_codes import ExitCode
from app.db.history import read_head_file
from tests.migrations.flask_db import DefineBadges, FlaskDb

BADGE_KINDS = ("gold", "silver", "bronze")


def kind_column() -> Column:
    return Column("kind", sa.Enum(*BADGE_KINDS, name="badge_kind"), nullable=True)


def assert_run_revert_run(flask_db: FlaskDb) -> None:
    for step in ("run", "revert", "run"):
        result = flask_db(step)
        assert result.exit_code == ExitCode.OK, f"{step}: {result.output}"


def test_a_new_model_with_an_enum_column_runs_reverts_and_runs_again(
    flask_db: FlaskDb, migrations_dir: Path, define_badges: DefineBadges
) -> None:
    flask_db("run")
    define_badges(kind_column())

    generated = flask_db("generate", "AddBadges")

    assert generated.exit_code == ExitCode.OK, generated.output
    (written,) = (migrations_dir / "versions").glob("*_add_badges.py")
    text = written.read_text()
    assert 'sa.Enum("gold", "silver", "bronze", name="badge_kind").create(op.get_bind())' in text
    assert 'sa.Enum("gold", "silver", "bronze", name="badge_kind").drop(op.get_bind())' in text
    assert "create_type=False" in text
    assert "CREATE TYPE badge_kind AS ENUM ('gold', 'silver', 'bronze');" in generated.output
    assert_run_revert_run(flask_db)


def test_adding_an_enum_column_creates_its_type_and_says_what_autogenerate_cannot_see(
    flask_db: FlaskDb, migrations_dir: Path, define_badges: DefineBadges
) -> None:
    flask_db("run")
    define_badges()
    assert flask_db("generate", "AddBadges").exit_code == ExitCode.OK
    assert flask_db("run").exit_code == ExitCode.OK
    define_badges(kind_column())

    generated = flask_db("generate", "AddBadgeKind")

    assert generated.exit_code == ExitCode.OK, generated.output
    assert "CREATE TYPE badge_kind AS ENUM" in generated.output
    assert "ALTER TABLE badges ADD COLUMN kind badge_kind;" in generated.output
    assert "badges.kind is an Enum: on PostgreSQL this revision creates type badge_kind" in (
        generated.output
    )
    assert "Later changes to its values are not detected" in generated.output
    assert_run_revert_run(flask_db)


def test_a_second_column_of_an_existing_enum_type_does_not_create_it_again(
    flask_db: FlaskDb, migrations_dir: Path, define_badges: DefineBadges
) -> None:
    flask_db("run")
    define_badges(kind_column())
    flask_db("generate", "AddBadges")
    flask_db("run")
    define_badges(kind_column(), Column("was", sa.Enum(*BADGE_KINDS, name="badge_kind")))

    generated = flask_db("generate", "AddBadgeWas")

    assert generated.exit_code == ExitCode.OK, generated.output
    (written,) = (migrations_dir / "versions").glob("*_add_badge_was.py")
    assert ".create(op.get_bind())" not in written.read_text()
    assert "uses the existing type badge_kind" in generated.output
    assert_run_revert_run(flask_db)


ENUM_WITHOUT_ITS_TYPE = '''"""badge kind, the way autogenerate wrote it before"""

import sqlalchemy as sa
from alembic import op

revision = "0b5e7e9e4a11"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("kind", sa.Enum("a", "b", name="user_kind")))


def downgrade():
    op.drop_column("users", "kind")
'''


def test_the_gate_runs_run_revert_run_on_postgresql_and_fails_on_a_missing_type(
    sqlite_flask_db: FlaskDb,
    migrations_dir: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATE_POSTGRES_URL", postgres_url)  # the gate makes its own database there
    down = read_head_file(migrations_dir)[0]
    (migrations_dir / "versions" / "29990101_000000_0b5e7e9e4a11_kind.py").write_text(
        ENUM_WITHOUT_ITS_TYPE.format(down=down)
    )

    result = sqlite_flask_db("gate")

    assert result.exit_code == ExitCode.FAILED
    assert "PostgreSQL: step 1 of run, revert, run (run) failed" in result.output
    assert 'type "user_kind" does not exist' in result.output


def test_dropping_an_enum_column_says_its_type_is_left_to_drop_by_hand(
    flask_db: FlaskDb, migrations_dir: Path, define_badges: DefineBadges
) -> None:
    flask_db("run")
    define_badges(kind_column(), Column("label", sa.String(40)))
    assert flask_db("generate", "AddBadges").exit_code == ExitCode.OK
    assert flask_db("run").exit_code == ExitCode.OK
    define_badges(Column("label", sa.String(40)))

    generated = flask_db("generate", "DropBadgeKind")

    assert generated.exit_code == ExitCode.OK, generated.output
    assert "drops badges.kind: " in generated.output
    assert "a PostgreSQL enum type used only there is not dropped" in generated.output
