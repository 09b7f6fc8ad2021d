"""Expand and contract: generate writes one revision per phase; run, status and lint follow them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.operations import ops
from flask import Flask
from sqlalchemy import Column, Integer, String, text

from app.db.exit_codes import ExitCode
from app.db.gate import model_differences
from app.db.history import read_head_file
from app.db.phases import CONTRACT, EXPAND, operation_phase
from tests.migrations.flask_db import DefineBadges, FlaskDb, cli, revision_files


def write_revision(
    migrations: Path, name: str, down_revision: str, phase: str, upgrade: str = "pass"
) -> Path:
    """A hand-written revision after ``down_revision`` that declares ``phase``."""
    path = migrations / "versions" / f"29990101_000000_{name}.py"
    path.write_text(
        f'"""{name}"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {name!r}\ndown_revision = {down_revision!r}\n"
        f"branch_labels = None\ndepends_on = None\nphase = {phase!r}\n\n\n"
        f"def upgrade():\n    {upgrade}\n\n\ndef downgrade():\n    pass\n"
    )
    return path


def head(migrations: Path) -> str:
    return read_head_file(migrations)[0]


def written_phase(path: Path) -> str:
    found = re.search(r'^phase = "(\w+)"$', path.read_text(), re.MULTILINE)
    assert found, path.read_text()
    return found.group(1)


def new_files(migrations: Path, before: list[Path]) -> list[Path]:
    return [p for p in revision_files(migrations) if p not in before]


def add_nickname_to_the_database(engine_for: Callable, url: str) -> None:
    """A column the models lack: autogenerate writes its drop (a contract operation)."""
    with engine_for(url).begin() as connection:
        connection.execute(text("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)"))


# --- which phase an operation belongs to --------------------------------------------


class SafeCreateIndexOp(ops.CreateIndexOp):
    """Stands for app.db.ops' operation of that name."""


class SafeSetNotNullOp(ops.AlterColumnOp):
    """Stands for app.db.ops' operation of that name."""


class UnsafeDropColumnOp(ops.DropColumnOp):
    """Stands for app.db.ops' operation of that name."""


class BackfillOp(ops.ExecuteSQLOp):
    """An operation that declares its phase."""

    phase = EXPAND


@pytest.mark.parametrize(
    ("operation", "phase"),
    [
        (ops.CreateTableOp("badges", [Column("id", Integer, primary_key=True)]), EXPAND),
        (ops.AddColumnOp("users", Column("nickname", String(40), nullable=True)), EXPAND),
        (
            ops.AddColumnOp(
                "users", Column("rank", Integer, nullable=False, server_default=text("0"))
            ),
            EXPAND,
        ),
        (ops.AddColumnOp("users", Column("rank", Integer, nullable=False)), CONTRACT),
        (ops.CreateIndexOp("ix_users_bio", "users", ["bio"]), EXPAND),
        (ops.CreateForeignKeyOp("fk", "a", "users", ["user_id"], ["id"]), EXPAND),
        (ops.CreateCheckConstraintOp("ck", "users", "length(bio) < 9"), EXPAND),
        (ops.CreateUniqueConstraintOp("uq", "users", ["bio"]), CONTRACT),
        (ops.DropColumnOp("users", "bio"), CONTRACT),
        (ops.DropTableOp("tags"), CONTRACT),
        (ops.DropIndexOp("ix_users_bio", "users"), CONTRACT),
        (ops.DropConstraintOp("fk", "articles"), CONTRACT),
        (ops.RenameTableOp("tags", "labels"), CONTRACT),
        (ops.AlterColumnOp("users", "bio", modify_name="about"), CONTRACT),
        (ops.AlterColumnOp("users", "bio", modify_type=String(10)), CONTRACT),
        (
            ops.AlterColumnOp("users", "bio", existing_nullable=True, modify_nullable=False),
            CONTRACT,
        ),
        (ops.AlterColumnOp("users", "bio", existing_nullable=False, modify_nullable=True), EXPAND),
        (ops.AlterColumnOp("users", "bio", modify_server_default=text("''")), EXPAND),
        (
            ops.AlterColumnOp(
                "users", "bio", existing_server_default=text("''"), modify_server_default=None
            ),
            CONTRACT,
        ),
        (SafeCreateIndexOp("ix_users_bio", "users", ["bio"]), EXPAND),
        (SafeSetNotNullOp("users", "bio", modify_nullable=False), CONTRACT),
        (UnsafeDropColumnOp("users", "bio"), CONTRACT),
        (BackfillOp("UPDATE users SET bio = ''"), EXPAND),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, ops.MigrateOperation) else value,
)
def test_each_operation_belongs_to_the_phase_the_previous_release_survives(
    operation: ops.MigrateOperation, phase: str
) -> None:
    assert operation_phase(operation) == phase


# --- generate ------------------------------------------------------------------------


def test_generate_writes_an_additive_change_as_one_expand_revision(
    flask_db: FlaskDb, migrations_dir: Path, define_badges: DefineBadges
) -> None:
    flask_db("run")
    before = revision_files(migrations_dir)
    define_badges(Column("label", String(40)))

    result = flask_db("generate", "AddBadges")

    assert result.exit_code == ExitCode.OK, result.output
    (written,) = new_files(migrations_dir, before)
    assert written_phase(written) == EXPAND
    assert "CONTRACT:" not in written.read_text()
    assert f"Generated {written} (expand)" in result.output


def test_generate_writes_a_dropped_column_as_a_contract_revision_with_its_banner(
    flask_db: FlaskDb, migrations_dir: Path, engine_for: Callable, empty_database: str
) -> None:
    flask_db("run")
    add_nickname_to_the_database(engine_for, empty_database)
    before = revision_files(migrations_dir)

    result = flask_db("generate", "DropNickname")

    assert result.exit_code == ExitCode.OK, result.output
    (written,) = new_files(migrations_dir, before)
    assert written_phase(written) == CONTRACT
    assert "It runs only after every replica runs the new code" in written.read_text()
    assert "HAZARDS" not in result.output
    assert "expected in a contract revision: ban-drop-column" in result.output


def test_generate_says_how_to_add_a_required_column_over_two_releases(
    flask_db: FlaskDb, migrations_dir: Path, define_badges: DefineBadges
) -> None:
    flask_db("run")
    define_badges(Column("label", String(40)))
    assert flask_db("generate", "AddBadges").exit_code == ExitCode.OK
    assert flask_db("run").exit_code == ExitCode.OK
    define_badges(Column("label", String(40)), Column("rank", Integer, nullable=False))

    result = flask_db("generate", "AddBadgeRank")

    assert result.exit_code == ExitCode.OK, result.output
    assert "badges.rank is added NOT NULL without a server default" in result.output
    assert "op.safe_set_not_null('badges', 'rank')" in result.output


def test_generate_splits_a_change_that_adds_and_drops_into_expand_then_contract(
    flask_db: FlaskDb,
    migrations_dir: Path,
    define_badges: DefineBadges,
    engine_for: Callable,
    empty_database: str,
) -> None:
    flask_db("run")
    add_nickname_to_the_database(engine_for, empty_database)
    define_badges(Column("label", String(40)))
    before = revision_files(migrations_dir)
    previous_head = head(migrations_dir)

    result = flask_db("generate", "BadgesNotNicknames")

    assert result.exit_code == ExitCode.OK, result.output
    expand, contract = sorted(new_files(migrations_dir, before), key=written_phase, reverse=True)
    assert written_phase(expand) == EXPAND and written_phase(contract) == CONTRACT
    expand_id, contract_id = expand.name.split("_")[2], contract.name.split("_")[2]
    assert f'down_revision = "{previous_head}"' in expand.read_text()
    assert f'down_revision = "{expand_id}"' in contract.read_text()
    assert "op.create_table(" in expand.read_text()
    assert "drop_column" not in expand.read_text()
    assert 'op.unsafe_drop_column("users", "nickname")' in contract.read_text()
    assert "create_table" not in contract.read_text()
    assert read_head_file(migrations_dir) == [contract_id]
    assert "drops column users.nickname" in contract.read_text()
    assert "drops column" not in expand.read_text()


def test_the_split_revisions_run_by_phase_and_revert_and_run_again(
    flask_db: FlaskDb,
    migrations_dir: Path,
    define_badges: DefineBadges,
    engine_for: Callable,
    empty_database: str,
) -> None:
    flask_db("run")
    add_nickname_to_the_database(engine_for, empty_database)
    define_badges(Column("label", String(40)))
    before = revision_files(migrations_dir)
    assert flask_db("generate", "BadgesNotNicknames").exit_code == ExitCode.OK
    ids = {written_phase(p): p.name.split("_")[2] for p in new_files(migrations_dir, before)}

    expand_run = flask_db("run", "--phase", "expand")
    assert expand_run.exit_code == ExitCode.OK, expand_run.output
    assert ids[EXPAND] in expand_run.output and ids[CONTRACT] not in expand_run.output
    assert "1 contract revision(s) left for `make migration-run phase=contract`" in (
        expand_run.output
    )
    assert "Nothing to apply in the expand phase" in flask_db("run", "--phase", "expand").output
    contract_run = flask_db("run", "--phase", "contract")
    assert contract_run.exit_code == ExitCode.OK, contract_run.output
    assert ids[CONTRACT] in contract_run.output

    reverted = flask_db("revert")
    assert reverted.exit_code == ExitCode.OK
    assert f"{ids[CONTRACT]} is a contract revision, one-way" in reverted.output
    assert flask_db("revert").exit_code == ExitCode.OK
    assert flask_db("run").exit_code == ExitCode.OK


def test_generate_refuses_a_column_rename_and_prints_the_two_release_recipe(
    flask_db: FlaskDb, migrations_dir: Path, define_badges: DefineBadges
) -> None:
    flask_db("run")
    define_badges(Column("name", String(40)))
    assert flask_db("generate", "AddBadges").exit_code == ExitCode.OK
    assert flask_db("run").exit_code == ExitCode.OK
    define_badges(Column("title", String(40)))
    before = revision_files(migrations_dir)

    result = flask_db("generate", "RenameBadgeName")

    assert result.exit_code == ExitCode.REFUSED
    assert revision_files(migrations_dir) == before
    assert "Rename badges.name to badges.title over two releases" in result.output
    assert "add badges.title nullable" in result.output
    assert "UPDATE badges SET title = name WHERE title IS NULL" in result.output
    assert "the new code writes name and title, or a trigger" in result.output
    assert "contract revision that drops badges.name" in result.output


def test_generate_refuses_a_table_dropped_while_another_is_created(
    flask_db: FlaskDb,
    migrations_dir: Path,
    define_badges: DefineBadges,
    engine_for: Callable,
    empty_database: str,
) -> None:
    flask_db("run")
    with engine_for(empty_database).begin() as connection:
        connection.execute(text("CREATE TABLE medals (id INTEGER PRIMARY KEY)"))
    define_badges()
    before = revision_files(migrations_dir)

    result = flask_db("generate", "MedalsBecomeBadges")

    assert result.exit_code == ExitCode.REFUSED
    assert "Rename table medals to badges over two releases" in result.output
    assert revision_files(migrations_dir) == before


# --- create ----------------------------------------------------------------------------


def test_create_writes_an_expand_revision_unless_told_contract(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    assert sqlite_flask_db("create", "AddThings").exit_code == ExitCode.OK
    expand = revision_files(migrations_dir)[-1]
    assert sqlite_flask_db("create", "DropThings", "--phase", "contract").exit_code == 0
    contract = next(p for p in revision_files(migrations_dir) if p.name.endswith("_drop_things.py"))
    assert sqlite_flask_db("create", "FillThings", "--data").exit_code == ExitCode.OK
    data = next(p for p in revision_files(migrations_dir) if p.name.endswith("_fill_things.py"))

    assert written_phase(expand) == EXPAND
    assert written_phase(contract) == CONTRACT
    assert "CONTRACT: this revision breaks the previous release" in contract.read_text()
    assert written_phase(data) == EXPAND


# --- run and status ----------------------------------------------------------------------


def test_status_shows_each_revisions_phase_and_what_each_phase_would_apply(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    write_revision(migrations_dir, "dropbio", head(migrations_dir), CONTRACT)

    result = sqlite_flask_db("status")

    assert re.search(r"^\[ \] dropbio  contract  29990101_000000_dropbio\.py", result.output, re.M)
    assert re.search(r"^\[ \] 1e9c63baa778  expand  ", result.output, re.M)
    expand_files = revision_files(migrations_dir)[:-1]
    expand_ids = ", ".join(p.name.split("_")[2] for p in expand_files)
    expand_run = f"An expand run would apply {len(expand_files)} ({expand_ids})"
    assert f"{expand_run}; a contract run then 1 (dropbio)." in result.output


def test_production_run_refuses_a_pending_contract_revision_without_a_phase(
    app_for: Callable[..., Flask], empty_database: str, migrations_dir: Path, tmp_path: Path
) -> None:
    released = head(migrations_dir)
    assert cli(app_for(empty_database, migrations_dir))("run").exit_code == ExitCode.OK
    write_revision(migrations_dir, "addnick", released, EXPAND)
    write_revision(migrations_dir, "dropbio", "addnick", CONTRACT)
    production = cli(
        app_for(empty_database, migrations_dir, APP_ENV="production", BACKUP_DIRECTORY=tmp_path)
    )

    refused = production("run")

    assert refused.exit_code == ExitCode.PHASE
    assert "contract revision(s) dropbio" in refused.output
    assert "make migration-run phase=expand" in refused.output
    assert "[ ] addnick" in production("status").output
    assert production("run", "--phase", "expand").exit_code == ExitCode.OK
    assert production("run", "--phase", "contract").exit_code == ExitCode.OK


def test_production_run_on_an_empty_database_applies_contract_revisions_too(
    app_for: Callable[..., Flask], empty_database: str, migrations_dir: Path, tmp_path: Path
) -> None:
    write_revision(migrations_dir, "dropbio", head(migrations_dir), CONTRACT)
    production = cli(
        app_for(empty_database, migrations_dir, APP_ENV="production", BACKUP_DIRECTORY=tmp_path)
    )

    result = production("run")

    assert result.exit_code == ExitCode.OK, result.output
    assert "dropbio  contract" in result.output


def test_development_run_without_a_phase_applies_contract_revisions_too(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    write_revision(migrations_dir, "dropbio", head(migrations_dir), CONTRACT)

    result = sqlite_flask_db("run")

    assert result.exit_code == ExitCode.OK
    assert "dropbio  contract" in result.output


def test_contract_run_refuses_an_expand_revision_that_follows_a_contract_one(
    sqlite_flask_db: FlaskDb, migrations_dir: Path
) -> None:
    write_revision(migrations_dir, "dropbio", head(migrations_dir), CONTRACT)
    write_revision(migrations_dir, "addnick", "dropbio", EXPAND)
    expand_run = sqlite_flask_db("run", "--phase", "expand")
    assert expand_run.exit_code == ExitCode.OK
    assert "Warning: expand revision(s) addnick follow a contract revision" in expand_run.output

    result = sqlite_flask_db("run", "--phase", "contract")

    assert result.exit_code == ExitCode.PHASE
    assert "expand revision(s) addnick follow a contract revision" in result.output
    assert "[ ] dropbio" in sqlite_flask_db("status").output


# --- lint ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("phase", "code"), [(EXPAND, ExitCode.FAILED), (CONTRACT, ExitCode.OK)])
def test_lint_judges_a_dropped_column_by_the_revisions_phase(
    sqlite_flask_db: FlaskDb, migrations_dir: Path, phase: str, code: ExitCode
) -> None:
    upgrade = 'op.drop_column("users", "bio")'
    write_revision(migrations_dir, "dropbio", head(migrations_dir), phase, upgrade)

    result = sqlite_flask_db("lint", "dropbio")

    assert result.exit_code == code, result.output
    if phase == EXPAND:
        assert "ban-drop-column" in result.output
        assert "in an expand revision, which runs while the previous release serves" in (
            result.output
        )
    else:
        assert "expected in a contract revision: ban-drop-column" in result.output


# --- models and schema agree on server defaults --------------------------------------------


def test_a_server_default_added_to_a_model_is_generated(
    flask_db: FlaskDb, migrations_dir: Path, define_badges: DefineBadges
) -> None:
    flask_db("run")
    define_badges(Column("points", Integer))
    assert flask_db("generate", "AddBadges").exit_code == ExitCode.OK
    assert flask_db("run").exit_code == ExitCode.OK
    define_badges(Column("points", Integer, server_default=text("0")))
    before = revision_files(migrations_dir)

    result = flask_db("generate", "DefaultPoints")

    assert result.exit_code == ExitCode.OK, result.output
    (written,) = new_files(migrations_dir, before)
    assert 'server_default=sa.text("0")' in written.read_text()
    assert written_phase(written) == EXPAND


def test_the_gate_sees_a_server_default_added_to_a_model(
    app_for: Callable[..., Flask],
    sqlite_database: str,
    migrations_dir: Path,
    define_badges: DefineBadges,
) -> None:
    flask_db = cli(app_for(sqlite_database, migrations_dir))
    assert flask_db("run").exit_code == ExitCode.OK
    define_badges(Column("points", Integer))
    assert flask_db("generate", "AddBadges").exit_code == ExitCode.OK
    define_badges(Column("points", Integer, server_default=text("0")))

    with app_for(sqlite_database, migrations_dir).app_context():
        differences = model_differences()

    assert [d[0][0] for d in differences] == ["modify_default"]
