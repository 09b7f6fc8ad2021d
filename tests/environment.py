"""The test suite's environment: sealed from the developer's settings.

The suite never reads the developer's ``.env`` nor the settings exported in
their shell (``DATABASE_URL`` above all): every app, CLI run and server a test
starts gets its settings from the test itself. Only the suite's own knobs pass
through: ``CI``, ``TEST_POSTGRES_URL``, ``TEST_REDIS_URL`` and ``REALWORLD_API_DIR``. Backups a
test makes without naming a folder go to a temporary one, removed at exit,
never into the project's ``backups/`` (the developer's own).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

from app.config import seal_environment

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
REALWORLD_API_DIR = Path(
    os.environ.get("REALWORLD_API_DIR") or PROJECT_ROOT.parent / "shared" / "conduit"
)


@cache
def backup_directory() -> str:
    """This process's folder for the backups tests make; removed when it exits."""
    folder = tempfile.mkdtemp(prefix="conduit-test-backups-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def seal() -> None:
    """Forget the caller's settings and ``.env`` for this process and its children.

    The app's sealing (app/config.py), plus the suite's own: no extra gunicorn
    options, backups in a temporary folder.
    """
    seal_environment()
    os.environ.pop("GUNICORN_CMD_ARGS", None)
    os.environ["BACKUP_DIRECTORY"] = backup_directory()


def realworld_api_file(name: str) -> tuple[Path, str | None]:
    """A file of the RealWorld project's ``api/`` folder, and why it is missing (or None)."""
    path = REALWORLD_API_DIR / name
    if path.is_file():
        return path, None
    return path, (
        f"{path} not found: it is the RealWorld project's api/{name} "
        "(https://github.com/gothinkster/realworld/tree/main/api); put that folder at "
        "../shared/conduit or point REALWORLD_API_DIR at it (CI=true makes this a failure)"
    )
