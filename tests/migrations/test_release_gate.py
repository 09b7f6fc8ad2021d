"""The previous-release gate: the released code's tables and columns against the new revisions.

Each scenario writes revisions after the current head into a scratch
migrations copy and runs the gate's check on a PostgreSQL database from that
head on; the previous release is the current models, which the head matches
(from the released revision on, they would map columns added since).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine

from app.db.history import read_head_file
from app.db.model_shape import ModelShape, shape_of
from app.db.release_gate import schema_problems
from app.extensions import db
from tests.environment import PROJECT_ROOT
from tests.migrations.flask_db import reset_postgres_schema

RELEASED = "234cf5ebce0c"  # what migrations/RELEASED names (tests/migrations/test_released.py)
(HEAD,) = read_head_file(PROJECT_ROOT / "migrations")

pytestmark = pytest.mark.postgresql_only

ADD_NICKNAME = 'op.add_column("users", sa.Column("nickname", sa.Text(), nullable=True))'
CREATE_BADGES = (
    'op.create_table("badges", sa.Column("id", sa.Integer(), primary_key=True), '
    'sa.Column("label", sa.Text(), nullable=False))'
)
DROP_BIO = 'op.drop_column("users", "bio")'
RENAME_BIO = 'op.alter_column("users", "bio", new_column_name="biography")'
ADD_REQUIRED_RANK = 'op.add_column("users", sa.Column("rank", sa.Integer(), nullable=False))'


@pytest.fixture
def write_revision(migrations_dir: Path) -> Callable[..., str]:
    """``write_revision(rev_id, upgrade_line, phase=…)``: a revision after the last one written."""
    chain = [HEAD]

    def write(revision: str, upgrade: str, phase: str = "expand") -> str:
        path = migrations_dir / "versions" / f"20270101_000000_{revision}_scenario.py"
        path.write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f'revision = "{revision}"\ndown_revision = "{chain[-1]}"\n'
            f'branch_labels = None\ndepends_on = None\nphase = "{phase}"\n\n\n'
            f"def upgrade():\n    {upgrade}\n\n\ndef downgrade():\n    pass\n"
        )
        chain.append(revision)
        return revision

    return write


@pytest.fixture
def check(
    app_for: Callable[..., Flask],
    postgres_url: str,
    migrations_dir: Path,
    engine_for: Callable[[str], Engine],
) -> Callable[..., list[str]]:
    """``check(new=None)``: the gate's problems, the previous release being today's models."""
    reset_postgres_schema(postgres_url)
    app = app_for(postgres_url, migrations_dir)
    previous = shape_of(db.metadata)

    def run(new: ModelShape | None = None) -> list[str]:
        with app.app_context():
            return schema_problems(previous, new or previous, HEAD, engine_for(postgres_url))

    return run


def renamed_bio() -> ModelShape:
    """Today's models with ``users.bio`` mapped as ``users.biography``."""
    shape = copy.deepcopy(shape_of(db.metadata))
    shape["users"]["biography"] = shape["users"].pop("bio")
    return shape


def without_bio() -> ModelShape:
    """Today's models without ``users.bio`` (the new code no longer reads it)."""
    shape = copy.deepcopy(shape_of(db.metadata))
    del shape["users"]["bio"]
    return shape


def test_a_new_nullable_column_passes(write_revision, check) -> None:
    write_revision("a0000000000a", ADD_NICKNAME)

    assert check() == []


def test_a_revision_with_a_concurrent_index_build_passes(write_revision, check) -> None:
    write_revision("a0000000000c", "op.safe_create_index('ix_users_bio', 'users', ['bio'])")

    assert check() == []


def test_a_new_table_passes(write_revision, check) -> None:
    write_revision("a0000000000b", CREATE_BADGES)

    assert check() == []


def test_an_expand_revision_dropping_a_column_the_previous_release_maps_fails(
    write_revision, check
) -> None:
    write_revision("d0000000000a", DROP_BIO)

    (problem,) = check(without_bio())

    assert "revision d0000000000a (expand) drops or renames users.bio" in problem


def test_a_one_step_rename_labelled_expand_fails_naming_the_old_column(
    write_revision, check
) -> None:
    write_revision("e0000000000a", RENAME_BIO)

    (problem,) = check(renamed_bio())

    assert "revision e0000000000a (expand) drops or renames users.bio" in problem


def test_a_one_step_rename_labelled_contract_fails_naming_the_new_column(
    write_revision, check
) -> None:
    write_revision("c0000000000a", RENAME_BIO, phase="contract")

    (problem,) = check(renamed_bio())

    assert "the new code maps users.biography, which only revision c0000000000a (contract)" in (
        problem
    )


def test_a_contract_revision_dropping_a_column_the_new_code_no_longer_maps_passes(
    write_revision, check
) -> None:
    write_revision("c0000000000b", DROP_BIO, phase="contract")

    assert check(without_bio()) == []


def test_a_not_null_column_without_a_default_fails(write_revision, check) -> None:
    write_revision("f0000000000a", ADD_REQUIRED_RANK)

    (problem,) = check()

    assert "revision f0000000000a (expand) adds users.rank NOT NULL without a default" in problem


def test_an_expand_revision_after_a_contract_one_fails(write_revision, check) -> None:
    write_revision("c0000000000c", "pass", phase="contract")
    write_revision("a0000000000c", ADD_NICKNAME)

    (problem,) = check()

    assert "revision a0000000000c is an expand revision after a contract one" in problem
