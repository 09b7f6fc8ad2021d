"""triggers skip what the app announces

Revision ID: 5f3c2d9a1b7e
Revises: a0c79c3c2aca
Create Date: 2026-12-04 12:39:00.000000+00:00

The change triggers (revision e7f98158c3b0) stay silent for a statement run
on a connection whose session says the app announces its own writes:
``conduit.change_feed = 'app'``, which the app's engine sets when it connects
(libpq ``options=-c conduit.change_feed=app``, app/config.py). The app sends
one notification per committing transaction, naming the surrogate keys it
changed (app/data/change_feed.py); the triggers' table names on top of it
would move every answer that read those tables. Writes on any other
connection (psql, a restore, a data migration: migrations/env.py clears the
setting on its connection) still notify as before.

Expand: the previous release does not set the option, so its writes keep
their trigger notifications, and the new release on a database without this
revision gets both (the listeners skip their own app notification; the
triggers' only move whole tables again).
"""

# Review: `make migration-lint` checks this revision's PostgreSQL SQL. When it
# reports hazards you have checked, record that (in migrations/reviewed.txt):
#   make migration-review rev=5f3c2d9a1b7e why="<why it is safe>"
# Once applied anywhere, never edit this file: write a new revision instead.

from alembic import op

# revision identifiers, used by Alembic.
revision = "5f3c2d9a1b7e"
down_revision = "a0c79c3c2aca"
branch_labels = None
depends_on = None

# When it runs: expand (before the new code ships, while the previous release
# serves) or contract (after every replica runs the new code). docs/migrations.md
phase = "expand"

SKIPPING = """
CREATE OR REPLACE FUNCTION conduit_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('conduit.change_feed', true) IS DISTINCT FROM 'app' THEN
        PERFORM pg_notify('conduit_changes', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$
"""

ALWAYS = """
CREATE OR REPLACE FUNCTION conduit_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conduit_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$
"""


def upgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(SKIPPING)


def downgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(ALWAYS)
