"""``flask db release`` (``make migration-release``): record the release production now runs.

Run it on the commit that was deployed, once its expand and contract phases
have run in production. It writes ``migrations/RELEASED`` (app/db/released.py)
with the head revision and the checked-out commit, after checking that there
is one head, that the commit's own ``migrations/HEAD`` names it and that no
revision file is changed or new in the working tree (the commit's code is the
code that reaches that revision).
"""

from __future__ import annotations

import subprocess

import click
from flask.cli import with_appcontext

from app.db import history
from app.db.alembic_setup import migrations_directory, script_directory
from app.db.exit_codes import ExitCode
from app.db.released import Release, committed_head, write_released


@click.command("release")
@with_appcontext
def release() -> None:
    """Record the head revision and the checked-out commit in migrations/RELEASED."""
    problem, recorded = _release_here()
    if recorded is None:
        click.echo(f"Refused: {problem}. migrations/RELEASED is unchanged.", err=True)
        raise SystemExit(ExitCode.FAILED)
    path = write_released(migrations_directory(), recorded)
    click.echo(f"Recorded the release {recorded} in {path}; commit it.")


def _release_here() -> tuple[str, Release | None]:
    heads = list(script_directory().get_heads())
    if len(heads) != 1:
        return history.several_heads_advice(heads), None
    migrations = migrations_directory()
    try:
        root = history.repository_root(migrations)
        commit = history.git(root, "rev-parse", "HEAD").strip()
        changed = history.git(root, "status", "--porcelain", "--", migrations).splitlines()
        named = committed_head(root, commit, root / migrations) or []
    except (history.GitError, subprocess.SubprocessError) as error:
        return f"git: {error}", None
    revision_changes = [line for line in changed if "/RELEASED" not in line]
    if revision_changes:
        return f"uncommitted changes under migrations/: {'; '.join(revision_changes)}", None
    if named != heads:
        return (
            f"the head is {heads[0]} but commit {commit[:12]}'s migrations/HEAD names "
            f"{', '.join(named) or 'nothing'}"
        ), None
    return "", Release(revision=heads[0], commit=commit)
