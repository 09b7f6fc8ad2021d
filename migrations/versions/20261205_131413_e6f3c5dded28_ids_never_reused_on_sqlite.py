"""ids never reused on sqlite

SQLite hands out max(id) + 1 for a table without AUTOINCREMENT, so the id of
the newest row comes back once that row is deleted: a retried
``DELETE /api/articles/{slug}/comments/{id}`` then deleted the comment posted
after it. PostgreSQL's sequences never hand out an id twice; on SQLite each
table with an id of its own is copied into one declared ``AUTOINCREMENT``
(Alembic's batch mode, foreign keys off while it runs: app/db/sqlite_batch.py).
Ids handed out and freed before this revision ran are not known to SQLite and
may still come back once. On PostgreSQL this revision does nothing.

Revision ID: e6f3c5dded28
Revises: 8650e4f73dbf
Create Date: 2026-12-05 13:14:13.474860+00:00

"""

# Review: `make migration-lint` checks this revision's PostgreSQL SQL. When it
# reports hazards you have checked, record that (in migrations/reviewed.txt):
#   make migration-review rev=e6f3c5dded28 why="<why it is safe>"
# Once applied anywhere, never edit this file: write a new revision instead.

from alembic import op

# revision identifiers, used by Alembic.
revision = "e6f3c5dded28"
down_revision = "8650e4f73dbf"
branch_labels = None
depends_on = None

# When it runs: expand (before the new code ships, while the previous release
# serves) or contract (after every replica runs the new code). docs/migrations.md
phase = "expand"


TABLES_WITH_IDS = ("users", "tags", "articles", "comments")


def _copy_tables(autoincrement: bool) -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for table in TABLES_WITH_IDS:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade():
    _copy_tables(autoincrement=True)


def downgrade():
    _copy_tables(autoincrement=False)
