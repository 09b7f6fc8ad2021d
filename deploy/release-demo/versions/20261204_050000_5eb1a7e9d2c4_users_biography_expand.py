"""users.bio becomes users.biography, expand: add biography, keep both in step, backfill

Revision ID: 5eb1a7e9d2c4
Revises: the head of the release it is added to (deploy/release-demo.sh fills it in)
Create Date: 2026-12-04 05:00:00.000000+00:00

The first half of renaming a column without downtime. While the previous
release (which reads and writes ``bio``) and the new one (``biography``) serve
side by side, a row trigger copies whichever of the two columns a statement
wrote into the other. Rows written before the trigger existed are copied in
batches by primary key, each batch its own transaction, so no statement
holds many row locks for long; running it again only touches rows still
missing ``biography``. The contract revision (c0a7ac7b10b5) drops the trigger
and ``bio`` once no replica of the previous release is left.
"""

# Review: `make migration-lint` checks this revision's PostgreSQL SQL. When it
# reports hazards you have checked, record that (in migrations/reviewed.txt):
#   make migration-review rev=5eb1a7e9d2c4 why="<why it is safe>"
# Once applied anywhere, never edit this file: write a new revision instead.

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5eb1a7e9d2c4"
down_revision = "PREVIOUS_HEAD"
branch_labels = None
depends_on = None
phase = "expand"

BATCH_SIZE = 500

users = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("bio", sa.Text),
    sa.column("biography", sa.Text),
)

# An INSERT names one of the two columns (the other is NULL); an UPDATE
# changes one of them. Either way the other follows.
KEEP_IN_STEP = """
CREATE FUNCTION users_bio_biography_in_step() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.biography IS NULL THEN
            NEW.biography := NEW.bio;
        ELSE
            NEW.bio := NEW.biography;
        END IF;
    ELSIF NEW.bio IS DISTINCT FROM OLD.bio THEN
        NEW.biography := NEW.bio;
    ELSIF NEW.biography IS DISTINCT FROM OLD.biography THEN
        NEW.bio := NEW.biography;
    END IF;
    RETURN NEW;
END
$$
"""
TRIGGER = (
    "CREATE TRIGGER users_bio_biography_in_step BEFORE INSERT OR UPDATE ON users "
    "FOR EACH ROW EXECUTE FUNCTION users_bio_biography_in_step()"
)


def upgrade():
    op.add_column("users", sa.Column("biography", sa.Text(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        # SQLite: one process writes at a time; copy once, in the run's transaction.
        op.execute(users.update().values(biography=users.c.bio))
        return
    op.execute(KEEP_IN_STEP)
    op.execute(TRIGGER)
    if op.get_context().as_sql:
        op.execute(users.update().where(users.c.biography.is_(None)).values(biography=users.c.bio))
        return
    connection = op.get_bind()
    last_id = 0
    # Commits the column and the trigger first: writes from here on keep both in step.
    with op.get_context().autocommit_block():
        while True:
            ids = (
                connection.execute(
                    sa.select(users.c.id)
                    .where(users.c.id > last_id)
                    .order_by(users.c.id)
                    .limit(BATCH_SIZE)
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            connection.execute(
                users.update()
                .where(users.c.id.in_(ids), users.c.biography.is_(None))
                .values(biography=users.c.bio)
            )
            last_id = ids[-1]


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS users_bio_biography_in_step ON users")
        op.execute("DROP FUNCTION IF EXISTS users_bio_biography_in_step()")
    op.drop_column("users", "biography")
