"""Helpers have homes of their own: nothing imports tests/conftest.py.

pytest loads a conftest itself; a module that imports it as a library loads it
a second time under another name, and ties fixtures and helpers together.
Shared helpers live in tests/apps.py, tests/databases.py, tests/serving.py...
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("tests", "bench", "scripts")


def imported_modules(path: Path) -> set[str]:
    """The modules ``path`` imports, by dotted name (``from x import y`` counts as ``x``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_the_tests_conftest() -> None:
    importers = [
        str(path.relative_to(ROOT))
        for source in SOURCES
        for path in sorted((ROOT / source).rglob("*.py"))
        if "tests.conftest" in imported_modules(path)
    ]
    assert importers == []
