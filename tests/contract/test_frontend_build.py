"""A contract change in a marshmallow schema fails the frontend build, and only until reverted.

Each case works on a scratch copy of the project (app/, scripts/, openapi.json,
frontend/ with a symlink to the real node_modules): it edits one schema,
regenerates openapi.json, and runs ``npm run build`` (openapi-typescript, then
``tsc --strict``), which must fail with a TypeScript error naming the field.
Then it restores the file, regenerates, and the build passes again on a spec
identical to the committed one.

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
        lambda spec: "articlesTotal" in _component(spec, "MultipleArticlesResponse")["required"],
    ),
    # A request field made required: the settings form that changes only the email breaks.
    "request-field-required": ContractChange(
        "app/users/schemas.py",
        _require_bio_on_update,
        r"error TS2345: .*\n\s+Property 'bio' is missing in type '\{ email: string; \}'",
        lambda spec: "bio" in _component(spec, "UpdateUser").get("required", []),
    ),
}


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of what the contract pipeline reads, sharing the real node_modules."""
    ignore = shutil.ignore_patterns("__pycache__", "node_modules", "*.pyc")
    for folder in ("app", "scripts", "frontend"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    shutil.copy2(ROOT / "openapi.json", tmp_path / "openapi.json")
    (tmp_path / "frontend" / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    return tmp_path


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _regenerate_spec(project: Path) -> str:
    # PYTHONPATH names only the copy, so the edited app/ is the one imported.
    env = {**os.environ, "PYTHONPATH": str(project)}
    result = _run([sys.executable, "scripts/generate_openapi.py"], project, env)
    assert result.returncode == 0, result.stderr
    return (project / "openapi.json").read_text(encoding="utf-8")


def _build_frontend(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_UPDATE_NOTIFIER": "1", "npm_config_update_notifier": "false"}
    return _run(["npm", "run", "build"], project / "frontend", env)


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

    broken = _build_frontend(scratch)
    output = broken.stdout + broken.stderr
    assert broken.returncode != 0, f"the build passed on a breaking change:\n{output}"
    assert re.search(change.tsc_says, output), f"not the expected TypeScript error:\n{output}"
    assert "src/api/usage.ts(" in output  # where a client of the API would have broken

    schema_file.write_text(original, encoding="utf-8")
    assert _regenerate_spec(scratch) == baseline_spec
    restored = _build_frontend(scratch)
    assert restored.returncode == 0, restored.stdout + restored.stderr
