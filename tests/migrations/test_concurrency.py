"""Replicas may migrate at once: four ``flask db`` processes against one database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select

from app import MIGRATIONS_DIRECTORY
from app.db.audit import UPGRADE, audit_table
from tests.apps import TEST_SECRET_KEY
from tests.environment import PROJECT_ROOT
from tests.migrations.flask_db import reset_postgres_schema, table_names

pytestmark = pytest.mark.served  # four flask db processes

REPLICAS = 4


def start_flask_db(command: str, database_url: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "APP_ENV": "testing",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": database_url,
        "FLASK_APP": "wsgi",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "db", command],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def assert_each_revision_applied_once(engine: Engine) -> None:
    with engine.connect() as connection:
        applied = dict(
            connection.execute(
                select(audit_table.c.revision, func.count())
                .where(audit_table.c.direction == UPGRADE)
                .group_by(audit_table.c.revision)
            ).all()
        )
    revisions = {s.revision for s in ScriptDirectory(MIGRATIONS_DIRECTORY).walk_revisions()}
    assert applied == dict.fromkeys(revisions, 1)
    assert not [name for name in table_names(engine) if name.startswith("_alembic_tmp")]


def run_replicas(command: str, database_url: str) -> None:
    replicas = [start_flask_db(command, database_url) for _ in range(REPLICAS)]
    outputs = [replica.communicate(timeout=120)[0] for replica in replicas]
    assert [replica.returncode for replica in replicas] == [0] * REPLICAS, "\n".join(outputs)


def test_concurrent_migration_runs_all_succeed_and_apply_each_revision_once(
    empty_database: str, engine_for: Callable[[str], Engine]
) -> None:
    run_replicas("run", empty_database)

    assert_each_revision_applied_once(engine_for(empty_database))


def test_concurrent_stock_upgrades_on_postgresql_are_serialized_too(
    postgres_url: str, engine_for: Callable[[str], Engine]
) -> None:
    reset_postgres_schema(postgres_url)

    run_replicas("upgrade", postgres_url)

    assert_each_revision_applied_once(engine_for(postgres_url))
