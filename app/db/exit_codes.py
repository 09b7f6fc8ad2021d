"""Exit codes of the ``flask db`` subcommands (documented in docs/migrations.md)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # an error, a failed check (lint, gate), an unreachable database
    USAGE = 2  # bad arguments (click)
    PENDING = 3  # revisions are not applied yet (status; generate on a database behind head)
    CHANGED = 4  # an applied revision's file changed or disappeared (status, verify, run, revert)
    NO_CHANGES = 5  # generate: the models and the database agree; no file written
    REFUSED = 6  # generate: the migration would drop every table, or looks like a rename
    PHASE = 7  # run: a contract revision pending in production without --phase, or out of order
