"""notify changes from the database

Revision ID: e7f98158c3b0
Revises: 234cf5ebce0c
Create Date: 2026-12-04 04:01:36.159781+00:00

PostgreSQL tells the response cache of every replica about every write and
every schema change, whoever makes them (a data migration, a restore, a psql
session), on the change feed's channel (app/data/change_feed.py):

- a statement-level trigger on each application table sends the table's name
  after any INSERT, UPDATE, DELETE or TRUNCATE; PostgreSQL delivers it at commit
  and folds identical notifications within one transaction;
- an event trigger sends '*' (every table) after any DDL. Event triggers need
  a superuser: for another role it is skipped with a warning, and the
  migration commands' own notification after each run covers DDL instead;
- ``conduit_attach_change_triggers()`` gives tables that lack the trigger one;
  migrations/env.py calls it after every run, so tables created by later
  revisions get it too.

SQLite needs nothing: ``PRAGMA data_version`` already sees every commit.
"""

# Review: `make migration-lint` checks this revision's PostgreSQL SQL. When it
# reports hazards you have checked, record that (in migrations/reviewed.txt):
#   make migration-review rev=e7f98158c3b0 why="<why it is safe>"
# Once applied anywhere, never edit this file: write a new revision instead.

from alembic import op

# revision identifiers, used by Alembic.
revision = "e7f98158c3b0"
down_revision = "234cf5ebce0c"
branch_labels = None
depends_on = None
phase = "expand"

NOTIFY_CHANGE = """
CREATE FUNCTION conduit_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conduit_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$
"""

ATTACH_CHANGE_TRIGGERS = """
CREATE FUNCTION conduit_attach_change_triggers() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    missing record;
    attached integer := 0;
BEGIN
    FOR missing IN
        SELECT c.oid::regclass AS name FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace
          AND c.relkind IN ('r', 'p')
          AND c.relname NOT IN ('alembic_version', 'migration_audit')
          AND c.relname NOT LIKE '\\_alembic\\_tmp\\_%'
          AND NOT EXISTS (
              SELECT FROM pg_trigger t
              WHERE t.tgrelid = c.oid AND t.tgname = 'conduit_changes')
    LOOP
        EXECUTE format(
            'CREATE TRIGGER conduit_changes'
            ' AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION conduit_notify_change()',
            missing.name);
        attached := attached + 1;
    END LOOP;
    RETURN attached;
END
$$
"""

NOTIFY_DDL = """
CREATE FUNCTION conduit_notify_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conduit_changes', '*');
END
$$
"""

EVENT_TRIGGERS = """
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        CREATE EVENT TRIGGER conduit_changes_ddl ON ddl_command_end
            EXECUTE FUNCTION conduit_notify_ddl();
        CREATE EVENT TRIGGER conduit_changes_drop ON sql_drop
            EXECUTE FUNCTION conduit_notify_ddl();
    ELSE
        RAISE WARNING 'conduit: % is not a superuser, so no event trigger announces DDL to '
            'the response cache; the migration commands announce their own runs', current_user;
    END IF;
END
$$
"""


def upgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(NOTIFY_CHANGE)
    op.execute(ATTACH_CHANGE_TRIGGERS)
    op.execute("SELECT conduit_attach_change_triggers()")
    op.execute(NOTIFY_DDL)
    op.execute(EVENT_TRIGGERS)


def downgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP EVENT TRIGGER IF EXISTS conduit_changes_drop")
    op.execute("DROP EVENT TRIGGER IF EXISTS conduit_changes_ddl")
    op.execute("DROP FUNCTION conduit_notify_ddl()")
    op.execute("DROP FUNCTION conduit_attach_change_triggers()")
    op.execute("DROP FUNCTION conduit_notify_change() CASCADE")  # and every table's trigger
