"""session keys for tokens

Revision ID: a0c79c3c2aca
Revises: e7f98158c3b0
Create Date: 2026-12-04 08:28:03.478013+00:00

``users.session_key``: a random 128-bit key per account, written as 32 hex
digits, that every token names (its ``sid`` claim, app/tokens.py). A new key
ends every token issued before it.

Expand: the column is nullable (NULL never authenticates), the database gives
every row the previous release inserts a key of its own (a server default:
that release does not know the column), and existing rows get one here, in
batches. A later contract revision may make it NOT NULL.
"""

# Review: `make migration-lint` checks this revision's PostgreSQL SQL. When it
# reports hazards you have checked, record that (in migrations/reviewed.txt):
#   make migration-review rev=a0c79c3c2aca why="<why it is safe>"
# Once applied anywhere, never edit this file: write a new revision instead.

import sqlalchemy as sa
from alembic import op

from app.db.backfill import backfill

# revision identifiers, used by Alembic.
revision = "a0c79c3c2aca"
down_revision = "e7f98158c3b0"
branch_labels = None
depends_on = None

# When it runs: expand (before the new code ships, while the previous release
# serves) or contract (after every replica runs the new code). docs/migrations.md
phase = "expand"

users = sa.table("users", sa.column("id", sa.Integer), sa.column("session_key", sa.Text))


def random_key():
    """A fresh random key for each row, as the models' ``RandomSessionKey`` writes it.

    PostgreSQL: the MD5 of two ``gen_random_uuid()`` (core since 13, from
    ``pg_strong_random``); SQLite: 16 bytes of ``randomblob()``. Both
    volatile: evaluated once per row.
    """
    if op.get_context().dialect.name == "postgresql":
        return sa.text("md5(((gen_random_uuid())::text || (gen_random_uuid())::text))")
    return sa.text("lower(hex(randomblob(16)))")


def upgrade():
    # The column without a default: catalog only on PostgreSQL, where ADD COLUMN
    # with a volatile default would rewrite the table under an exclusive lock.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_key", sa.Text(), nullable=True))
    # Then the default, for the rows inserted from now on, by this release or the
    # previous one: SET DEFAULT changes the catalog only (PostgreSQL). SQLite
    # cannot change a default in place: batch mode copies the table.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "session_key",
            existing_type=sa.Text(),
            existing_nullable=True,
            server_default=random_key(),
        )
    # Then the rows already there (and any inserted between the two statements).
    if op.get_context().as_sql:
        op.execute("-- backfill users.session_key in batches (online only)")
        return
    backfill(
        users,
        {"session_key": random_key()},
        pending=users.c.session_key.is_(None),
        batch_size=1_000,
    )


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_key")
