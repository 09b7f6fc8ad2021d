"""identity keys for usernames and emails

Revision ID: 234cf5ebce0c
Revises: 5118002ee141
Create Date: 2026-11-30 04:59:00.357458+00:00

Usernames and emails become unique as people read them: ``users.username_key``
and ``users.email_key`` hold NFKC(casefold(NFKC(text))) (app/text.py), with a
unique constraint each, and every look-up goes through them. Existing rows are
backfilled here. Two accounts that already share a key (``Kay`` and ``kay``)
cannot both keep it: the upgrade stops before changing anything and names them,
so they can be merged or renamed first.
"""

# Review: `make migration-lint` checks this revision's PostgreSQL SQL. When it
# reports hazards you have checked, record that (in migrations/reviewed.txt):
#   make migration-review rev=234cf5ebce0c why="<why it is safe>"
# Once applied anywhere, never edit this file: write a new revision instead.

import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "234cf5ebce0c"
down_revision = "5118002ee141"
branch_labels = None
depends_on = None

users = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("username", sa.String),
    sa.column("email", sa.String),
    sa.column("username_key", sa.Text),
    sa.column("email_key", sa.Text),
)


def identity_key(text):
    """app.text.identity_key as of this revision (frozen here: revisions never change)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _keys():
    """{user id: (username key, email key)}; stops, changing nothing, if two users share one."""
    if op.get_context().as_sql:
        return {}  # offline SQL (review, lint): there are no rows to read
    rows = op.get_bind().execute(sa.select(users.c.id, users.c.username, users.c.email)).all()
    keys = {row.id: (identity_key(row.username), identity_key(row.email)) for row in rows}
    clashes = []
    for position, field in enumerate(("username", "email")):
        owners = defaultdict(list)
        for user_id, pair in keys.items():
            owners[pair[position]].append(user_id)
        clashes += [
            f"{field} {key!r}: users {sorted(ids)}" for key, ids in owners.items() if len(ids) > 1
        ]
    if clashes:
        raise RuntimeError(
            "accounts that read as the same person; rename or merge them, then upgrade again: "
            + "; ".join(sorted(clashes))
        )
    return keys


def upgrade():
    # Read and check first: SQLite runs DDL outside the transaction, so a clash
    # found after adding the columns would leave them behind.
    keys = _keys()

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("username_key", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("email_key", sa.Text(), nullable=True))

    if op.get_context().as_sql:
        # The keys are computed in Python: the rendered script is only complete
        # for an empty users table.
        op.execute("-- backfill users.username_key and users.email_key (online only)")
    for user_id, (username_key, email_key) in keys.items():
        op.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(username_key=username_key, email_key=email_key)
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("username_key", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("email_key", existing_type=sa.Text(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_users_email_key"), ["email_key"])
        batch_op.create_unique_constraint(batch_op.f("uq_users_username_key"), ["username_key"])


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_username_key"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_users_email_key"), type_="unique")
        batch_op.drop_column("email_key")
        batch_op.drop_column("username_key")
