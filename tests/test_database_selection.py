"""``--databases`` (tests/conftest.py) selects by marker: the halves left out are not collected.

``make test-quick`` runs ``--databases sqlite``: not one PostgreSQL test may be
collected there, whichever fixture parametrizes it (``database_url``,
``served_app``, ``served_module``, ``collating_client``, a module's own).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # collects the whole suite in a subprocess


def collected(*options: str) -> list[str]:
    """The node ids ``pytest --collect-only`` lists for the suite with ``options``."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *options],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    return [line for line in completed.stdout.splitlines() if "::" in line]


def test_databases_sqlite_collects_no_postgresql_test() -> None:
    ids = collected("--databases", "sqlite", "tests")

    on_postgresql = [node for node in ids if re.search(r"[\[-]postgresql(-icu)?[\]-]", node)]
    assert on_postgresql == []
    assert "tests/test_served_edges.py::test_served_registration_works[sqlite]" in ids
    assert "tests/test_tags.py::test_tags_in_use_most_used_first[sqlite]" in ids
