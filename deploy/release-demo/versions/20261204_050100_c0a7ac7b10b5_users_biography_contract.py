"""users.bio becomes users.biography, contract: drop the trigger and bio

Revision ID: c0a7ac7b10b5
Revises: 5eb1a7e9d2c4
Create Date: 2026-12-04 05:01:00.000000+00:00

The second half of the rename (see 5eb1a7e9d2c4). Runs once every replica
runs the release that reads and writes ``biography``: nothing reads ``bio``
any more, so it goes, with the trigger that kept it in step.
"""

# Review: `make migration-lint` checks this revision's PostgreSQL SQL. When it
# reports hazards you have checked, record that (in migrations/reviewed.txt):
#   make migration-review rev=c0a7ac7b10b5 why="<why it is safe>"
# Once applied anywhere, never edit this file: write a new revision instead.

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c0a7ac7b10b5"
down_revision = "5eb1a7e9d2c4"
branch_labels = None
depends_on = None
phase = "contract"

# 5eb1a7e9d2c4's trigger, frozen here for the way back (revisions never change).
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
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS users_bio_biography_in_step ON users")
        op.execute("DROP FUNCTION IF EXISTS users_bio_biography_in_step()")
    op.drop_column("users", "bio")


def downgrade():
    op.add_column("users", sa.Column("bio", sa.Text(), nullable=True))
    op.execute("UPDATE users SET bio = biography")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(KEEP_IN_STEP)
        op.execute(TRIGGER)
