"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
<%
    destructive = (config.attributes.get("destructive_operations") or {}).get(up_revision) or []
    phase = (
        (config.attributes.get("revision_phases") or {}).get(up_revision)
        or config.attributes.get("phase")
        or "expand"
    )
%>
% if phase == "contract":
# =============================================================================
# CONTRACT: this revision breaks the previous release (it drops, renames or
# tightens). It runs only after every replica runs the new code:
#   make migration-run phase=contract
# Its downgrade cannot bring back the data it drops: the contract phase is
# one-way in production (the downgrade is there for development and CI).
# =============================================================================
% endif
% if destructive:
# =============================================================================
# DESTRUCTIVE: this revision loses or rewrites data.
%   for operation in destructive:
#   - ${operation}
%   endfor
# Back up first (make db-backup), make downgrade() restore what it can, and
# record the review (see below) only once you have checked it.
# =============================================================================
% endif
# Review: `make migration-lint` checks this revision's PostgreSQL SQL. When it
# reports hazards you have checked, record that (in migrations/reviewed.txt):
#   make migration-review rev=${up_revision} why="<why it is safe>"
# Once applied anywhere, never edit this file: write a new revision instead.
% if config.attributes.get("data_migration"):
# Data migration: it describes the few columns it touches as they are at this
# revision (sa.table / sa.column) and never imports app.models, which will
# have changed by the time someone runs it.

import sqlalchemy as sa  # noqa: F401 (for the table descriptions)
from alembic import op  # noqa: F401 (op.get_bind() gives the connection)

from app.db.backfill import backfill  # noqa: F401 (batched, committed, resumable updates)

# revision identifiers, used by Alembic.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}

# When it runs: expand (before the new code ships, while the previous release
# serves) or contract (after every replica runs the new code). docs/migrations.md
phase = ${repr(phase)}

# Describe what you touch, and update it in batches, for example:
#   users = sa.table("users", sa.column("id", sa.Integer), sa.column("bio", sa.Text))
#   backfill(users, {"bio": ""}, pending=users.c.bio.is_(None), batch_size=1_000)
#
# Transactions (docs/migrations.md): on PostgreSQL this revision runs in a
# transaction of its own, on SQLite the whole run is one. A backfill of a
# table of any size goes through backfill() (app/db/backfill.py): it updates
# the rows still pending in batches by primary key, commits each batch (in an
# autocommit block), pauses between batches (BACKFILL_PAUSE) and prints its
# progress. Interrupted, it resumes where it stopped when run again: write
# `pending` so that it is false once a row is done, as below.

def upgrade():
    pass


def downgrade():
    # Say so when the change cannot be undone:
    #   raise NotImplementedError("this data migration is one-way")
    pass
% else:
<% keep = "" if upgrades else "  # noqa: F401 (for the upgrade you write)" %>
import sqlalchemy as sa${keep}
from alembic import op${keep}
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}

# When it runs: expand (before the new code ships, while the previous release
# serves) or contract (after every replica runs the new code). docs/migrations.md
phase = ${repr(phase)}


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
% endif
