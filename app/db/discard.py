"""``flask db discard <rev>`` (``make migration-discard rev=<id>``): drop a revision never applied.

For a revision generated (or created) by mistake, or regenerated differently:
it deletes the revision's file and points ``migrations/HEAD`` back at the
revision it was written on. It refuses (exit 1, nothing changed) when the
revision

- is not the single head (discard the newest first; one step at a time);
- is applied to the configured database (``make migration-revert`` first);
- is on the main branch, or the main branch cannot be found (it is then
  shared history: write a new revision instead, docs/migrations.md), or is
  the release ``migrations/RELEASED`` names.

A revision reverted after being applied can be discarded: its rows in the
migration audit table stay, as they do for any reverted revision.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from app.data.database import connection_problem
from app.db import history
from app.db.alembic_setup import migrations_directory, script_directory
from app.db.exit_codes import ExitCode
from app.db.released import ReleasedError, read_released, released_file
from app.db.status import State, read_status
from app.extensions import db


class DiscardRefused(Exception):
    """Why a revision may not be discarded; one line."""


@click.command("discard")
@click.argument("revision")
@with_appcontext
def discard(revision: str) -> None:
    """Delete a revision that was never applied and is not on main; HEAD moves back."""
    try:
        path, previous = discard_revision(revision)
    except DiscardRefused as error:
        click.echo(f"Refused: {error}. Nothing was changed.", err=True)
        raise SystemExit(ExitCode.FAILED) from None
    back_to = ", ".join(previous) or "no revision (the history is empty)"
    click.echo(f"Discarded {revision}: removed {path}; migrations/HEAD names {back_to}.")


def discard_revision(revision: str) -> tuple[Path, list[str]]:
    """Delete ``revision``'s file and rewrite ``migrations/HEAD``; its path and the new heads.

    Raises :class:`DiscardRefused` with the reason, before changing anything.
    """
    script = script_directory()
    heads = list(script.get_heads())
    found = next((s for s in script.walk_revisions() if s.revision == revision), None)
    if found is None:
        raise DiscardRefused(f"no revision {revision} in {migrations_directory()}")
    if heads != [found.revision]:
        raise DiscardRefused(
            f"{revision} is not the head ({', '.join(heads)}): discard the newest revision first"
        )
    path = Path(found.path).resolve()
    if path not in history.branch_only(script.versions):
        raise DiscardRefused(
            f"{path.name} is on the main branch (or no main branch was found): it is shared "
            "history; write a new revision that undoes it instead"
        )
    if released_file(migrations_directory()).is_file():
        try:
            released = read_released(migrations_directory()).revision
        except ReleasedError:
            released = None
        if released == revision:
            raise DiscardRefused(f"{revision} is the release migrations/RELEASED names")
    try:
        with db.engine.connect() as connection:
            status = read_status(script, connection)
    except SQLAlchemyError as error:
        problem = connection_problem(error, db.engine.url) or str(error).strip()
        raise DiscardRefused(f"cannot tell whether it is applied: {problem}") from None
    state = next((s.state for s in status.revisions if s.revision == revision), State.PENDING)
    if state is not State.PENDING:
        raise DiscardRefused(
            f"{revision} is applied to {db.engine.url.render_as_string(hide_password=True)}: "
            "make migration-revert first"
        )
    down = found.down_revision
    previous = [down] if isinstance(down, str) else list(down or ())
    path.unlink()
    history.write_head_file(migrations_directory(), previous)
    return path, previous
