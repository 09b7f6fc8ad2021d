"""Helpers have homes of their own: nothing imports a conftest.

pytest loads a conftest itself; a module that imports it as a library loads it
a second time under another name, and ties fixtures and helpers together.
Shared helpers live in tests/apps.py, tests/databases.py, tests/serving.py,
tests/contract/operations.py, tests/migrations/flask_db.py...
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


def conftest_imports(path: Path) -> set[str]:
    """The conftests ``path`` imports (``tests.conftest``, ``tests.migrations.conftest``…)."""
    return {
        name
        for name in imported_modules(path)
        if "conftest" in name.split(".")[:-1] or name.split(".")[-1] == "conftest"
    }


def test_no_module_imports_a_conftest() -> None:
    importers = [
        str(path.relative_to(ROOT))
        for source in SOURCES
        for path in sorted((ROOT / source).rglob("*.py"))
        if conftest_imports(path)
    ]
    assert importers == []


def test_an_import_of_a_nested_conftest_is_found(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text("from tests.migrations.conftest import cli\nimport tests.contract.conftest\n")

    assert conftest_imports(module) == {
        "tests.migrations.conftest",
        "tests.migrations.conftest.cli",
        "tests.contract.conftest",
    }
