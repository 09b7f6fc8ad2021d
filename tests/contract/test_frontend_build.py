"""A contract change in a marshmallow schema fails the web app's build, and only until reverted.

Each case works on a scratch copy of the project (app/, scripts/, openapi.json,
the Makefile, frontend/ with symlinks to the real node_modules and .venv): it
edits one schema, runs ``make openapi`` and ``make frontend-build``
(openapi-typescript, then ``tsc --strict`` over the pages, eslint, vite build),
which must fail with the TypeScript error naming the field, in the file of the
app that reads or sends it, before anything is bundled. Then it restores the
file, and ``make openapi frontend-build`` passes again on a spec identical to
the committed one.

Needs node, npm and frontend/node_modules (``make frontend-build`` installs
them); without them the tests skip, unless CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.databases import IN_CI

pytestmark = pytest.mark.node

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "frontend" / "node_modules"
TSC = NODE_MODULES / ".bin" / "tsc"


def _missing_tooling() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (node 20+ is needed for the frontend build)"
    if not TSC.exists():
        return f"{NODE_MODULES} is not installed: run `make frontend-build` (npm ci)"
    return None


@pytest.fixture(scope="module", autouse=True)
def frontend_tooling() -> None:
    reason = _missing_tooling()
    if reason is not None:
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@dataclass(frozen=True)
class ContractChange:
    file: str
    edit: Callable[[str], str]
    tsc_says: str  # the TypeScript diagnostic that names the field (a regex)
    where: str  # the app's file that reads or sends the field
    in_spec: Callable[[dict], bool]  # true of the regenerated openapi.json once changed


def _rename_articles_count(source: str) -> str:
    changed, count = re.subn(r"\barticles_count(\s*=)", r"articles_total\1", source)
    assert count == 1, "MultipleArticlesResponseSchema.articles_count not found"
    return changed


def _require_bio_on_update(source: str) -> str:
    head, sep, rest = source.partition("class UpdateUserSchema(")
    body, next_class, tail = rest.partition("\nclass ")
    changed, count = re.subn(r"(\n    bio = \w+(?:\.\w+)*\()", r"\1required=True, ", body)
    assert sep and count == 1, "UpdateUserSchema.bio not found"
    return head + sep + changed + next_class + tail


def _component(spec: dict, name: str) -> dict:
    return spec["components"]["schemas"][name]


CHANGES = {
    # A response field renamed: `articlesCount` becomes `articlesTotal` on the wire.
    "response-field-renamed": ContractChange(
        "app/articles/schemas.py",
        _rename_articles_count,
        r"error TS2339: Property 'articlesCount' does not exist on type",
        "src/components/ArticleList.tsx",  # pages the list with the count
        lambda spec: "articlesTotal" in _component(spec, "MultipleArticlesResponse")["required"],
    ),
    # A request field made required: the settings form, which sends only what changed, breaks.
    "request-field-required": ContractChange(
        "app/users/schemas.py",
        _require_bio_on_update,
        r"error TS2741: Property 'bio' is missing in type '\{\}' but required in type",
        "src/pages/settings/changes.ts",
        lambda spec: "bio" in _component(spec, "UpdateUser").get("required", []),
    ),
}


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of what the contract pipeline reads, sharing node_modules and .venv."""
    ignore = shutil.ignore_patterns("__pycache__", "node_modules", "*.pyc", "dist", "test-results")
    for folder in ("app", "scripts", "frontend", "migrations"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    for file in ("openapi.json", "Makefile", "wsgi.py", "requirements.txt", "requirements-dev.txt"):
        shutil.copy2(ROOT / file, tmp_path / file)  # keeps mtimes: make installs nothing
    (tmp_path / "frontend" / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return tmp_path


def _make(project: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NO_UPDATE_NOTIFIER": "1",
        "npm_config_update_notifier": "false",
        "MAKEFLAGS": "",
        "PYTHONPATH": str(project),  # the edited app/ is the one imported
    }
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), *targets],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _regenerate_spec(project: Path) -> str:
    result = _make(project, "openapi")
    assert result.returncode == 0, result.stdout + result.stderr
    return (project / "openapi.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_contract_change_fails_the_frontend_build_until_reverted(
    scratch: Path, change: ContractChange
) -> None:
    schema_file = scratch / change.file
    original = schema_file.read_text(encoding="utf-8")
    baseline_spec = _regenerate_spec(scratch)

    schema_file.write_text(change.edit(original), encoding="utf-8")
    changed_spec = json.loads(_regenerate_spec(scratch))
    assert change.in_spec(changed_spec), "the schema edit did not reach openapi.json"

    broken = _make(scratch, "frontend-build")
    output = broken.stdout + broken.stderr
    assert broken.returncode != 0, f"the build passed on a breaking change:\n{output}"
    assert re.search(change.tsc_says, output), f"not the expected TypeScript error:\n{output}"
    assert f"{change.where}(" in output, output  # where the app reads or sends the field
    assert "stale" not in output  # the compiler speaks first, not a staleness check
    assert not (scratch / "frontend" / "dist").exists()  # nothing was bundled

    schema_file.write_text(original, encoding="utf-8")
    assert _regenerate_spec(scratch) == baseline_spec
    restored = _make(scratch, "frontend-build")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert (scratch / "frontend" / "dist" / "index.html").is_file()
