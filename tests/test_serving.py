"""gunicorn startup: unsafe production settings stop it with one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SECRET_KEY", "DATABASE_URL", "APP_ENV")
    }
    environment.update({"PYTHONPATH": str(ROOT), "HOST": "127.0.0.1", "PORT": "0", **env})
    return subprocess.run(
        [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (
            {"DATABASE_URL": "postgresql://db/conduit"},
            "SECRET_KEY must be set to a unique value in production",
        ),
        (
            {"SECRET_KEY": "short", "DATABASE_URL": "postgresql://db/conduit"},
            "SECRET_KEY must be at least 32 characters in production",
        ),
        ({"SECRET_KEY": "k" * 40}, "DATABASE_URL must be set in production"),
    ],
    ids=["no secret key", "short secret key", "no database url"],
)
def test_gunicorn_refuses_unsafe_production_settings(env: dict[str, str], reason: str) -> None:
    completed = _start(APP_ENV="production", **env)
    assert completed.returncode != 0
    assert completed.stderr.strip().splitlines()[-1] == f"configuration error: {reason}"
    assert "Traceback" not in completed.stderr
