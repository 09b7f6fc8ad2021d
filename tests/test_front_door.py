"""The front door: the Makefile's targets, its prerequisite checks, and the docs that name them.

These run ``make`` itself (the real surface), with ``PYTHON`` set to the
project's own .venv interpreter, so no check ever rebuilds that .venv.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
STRONG_KEY = "k" * 40
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
# The .venv's own interpreter always matches the .venv: make keeps it as it is.
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)


def make(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        # when the suite runs under make: its flags, and the ARGS it exported to recipes
        if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "ARGS", "FRONTEND")
    }
    return subprocess.run(
        ["make", "--no-print-directory", f"PYTHON={PYTHON}", *args],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def executable(path: Path, script: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def make_targets() -> set[str]:
    """Every target the Makefile defines, from make's own database."""
    database = make("-pRrq", ":").stdout
    return set(re.findall(r"^([a-z][a-z0-9-]*):(?!=)", database, re.M))


def named_targets(markdown: str) -> set[str]:
    """The targets of every ``make …`` command in the code of a Markdown page."""
    code = re.findall(r"```.*?```|`[^`\n]+`", markdown, re.S)
    names = set()
    for snippet in code:
        for words in re.findall(r"(?:^|[\s`(;&|])make((?: +[^\s`]+)+)", snippet, re.M):
            for word in words.split():
                if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
                    break
                names.add(word)
    return names


# --- make help ---------------------------------------------------------------------


def test_help_groups_the_targets_by_section() -> None:
    completed = make("help")

    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    sections = [line for line in lines if line and not line.startswith(" ")]
    assert sections[:2] == ["Getting started", "Tests and quality"]
    assert "Database and migrations" in sections
    assert any(re.fullmatch(r"  run +Set up, migrate, .*serve.*", line) for line in lines)


def test_help_lists_targets_with_digits_in_their_names() -> None:
    assert re.search(r"^  e2e +\S", make("help").stdout, re.M)


def test_help_writes_no_escape_codes_when_not_on_a_terminal() -> None:
    assert "\x1b" not in make("help").stdout


# --- the docs name only targets that exist -------------------------------------------


@pytest.mark.parametrize("page", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_make_target_the_docs_name_exists(page: Path) -> None:
    named = named_targets(page.read_text(encoding="utf-8"))

    assert sorted(named - make_targets()) == []


def test_the_target_reader_sees_every_command_form() -> None:
    markdown = (
        '`make run`, `PORT=6203 make run`, `make test ARGS="-k follow"`\n'
        "```bash\nmake openapi frontend-types  # then\ncd x && make no-such-target\n```\n"
        "make prose-is-not-a-command"
    )

    assert named_targets(markdown) == {"run", "test", "openapi", "frontend-types", "no-such-target"}


def test_the_readme_links_every_docs_page_and_each_link_resolves() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(((?:docs/)[^)#]+)\)", readme))

    assert {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")} <= links
    assert [link for link in links if link.endswith(".md") and not (ROOT / link).is_file()] == []


def test_the_readme_fits_on_two_screens() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 100


# --- test targets ----------------------------------------------------------------


def test_make_test_passes_args_to_pytest_and_runs_only_that() -> None:
    completed = make("-n", "test", "ARGS=-k follow")

    assert re.search(r"^\.venv/bin/pytest .*-k follow$", completed.stdout, re.M)
    assert "npm" not in completed.stdout


def test_make_test_without_args_runs_the_web_apps_tests_too() -> None:
    assert "npm --prefix frontend run --silent test" in make("-n", "test").stdout


def test_make_test_with_args_and_frontend_1_runs_the_web_apps_tests_too() -> None:
    completed = make("-n", "test", "ARGS=-k follow", "FRONTEND=1")

    assert "npm --prefix frontend run --silent test" in completed.stdout


def test_the_quick_target_runs_sqlite_only_without_browser_node_served_or_slow() -> None:
    completed = make("-n", "test-quick", "ARGS=-x")

    (command,) = re.findall(r"^\.venv/bin/pytest .*$", completed.stdout, re.M)
    assert (
        '--databases sqlite -m "not browser and not node and not served and not slow" -x' in command
    )
    assert "npm" not in completed.stdout


# --- prerequisites -----------------------------------------------------------------


def test_an_old_python_is_one_line_before_anything_is_installed(tmp_path: Path) -> None:
    old = executable(tmp_path / "python3.10", "#!/bin/sh\necho 3.10.13 /opt/py310/bin/python3\n")
    venv = tmp_path / ".venv"

    completed = make("install", f"PYTHON={old}", f"VENV={venv}")

    assert completed.returncode != 0
    assert completed.stdout == ""
    (line, _make_error) = completed.stderr.splitlines()
    assert line == (
        "prerequisites: found Python 3.10.13 (/opt/py310/bin/python3); Conduit needs 3.11 or "
        "newer: install it, or name one: make <target> PYTHON=python3.12"
    )
    assert not venv.exists()


def test_a_venv_built_by_another_interpreter_is_rebuilt(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    executable(venv / "bin" / "python", "#!/bin/sh\necho /opt/py310 3.10.13\n")

    completed = make("python-version", f"VENV={venv}")

    assert completed.returncode == 0
    assert completed.stdout.startswith(
        f"prerequisites: {venv} was built with 3.10.13 (/opt/py310), not Python "
    )
    assert not venv.exists()


def test_a_venv_of_the_same_interpreter_is_kept(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(PYTHON)

    completed = make("python-version", f"VENV={venv}")

    assert (completed.returncode, completed.stdout, completed.stderr) == (0, "", "")
    assert (venv / "bin" / "python").exists()


def test_an_old_node_is_one_line(tmp_path: Path) -> None:
    executable(tmp_path / "bin" / "node", "#!/bin/sh\necho v18.19.0\n")

    completed = make("node-version", PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")

    assert completed.returncode != 0
    assert completed.stderr.splitlines()[0] == (
        f"prerequisites: found node 18.19.0 ({tmp_path / 'bin' / 'node'}); "
        "this needs node 20 or newer"
    )


# --- db-reset ------------------------------------------------------------------------


def _database_with_a_table(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE keep_me (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    return url


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.served
def test_db_reset_drops_migrates_and_seeds(tmp_path: Path) -> None:
    url = _database_with_a_table(tmp_path / "conduit.db")

    completed = make(
        "db-reset",
        DATABASE_URL=url,
        SEED_ARGS="--users 3 --articles 4 --tags 4 --tags-per-article 2 --follows 1 --favorites 1",
    )

    assert completed.returncode == 0, completed.stderr
    assert "keep_me" not in _tables(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM articles")) == 4
        assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    engine.dispose()


@pytest.mark.served
def test_db_reset_refuses_a_production_database(tmp_path: Path) -> None:
    url = _database_with_a_table(tmp_path / "conduit.db")

    completed = make("db-reset", APP_ENV="production", SECRET_KEY=STRONG_KEY, DATABASE_URL=url)

    assert completed.returncode != 0
    assert (
        "Error: refusing to drop the tables of a production database (APP_ENV=production)"
        in completed.stderr
    )
    assert "keep_me" in _tables(url)


# --- the throwaway server behind make fuzz and make conformance ------------------------


@pytest.mark.served
def test_make_fuzz_on_a_taken_port_fails_loudly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        completed = make("fuzz", f"PORT={port}")

    assert completed.returncode != 0
    assert (
        f"throwaway server: port {port} is taken: pick another, or leave it unset for a free one"
    ) in completed.stderr


def test_conformance_without_the_spec_skips_and_says_where_it_comes_from(tmp_path: Path) -> None:
    completed = make("conformance", REALWORLD_API_DIR=str(tmp_path), CI="")

    assert completed.returncode == 0
    assert "conformance: skipped:" in completed.stdout
    assert "https://github.com/gothinkster/realworld/tree/main/api" in completed.stdout
    assert "REALWORLD_API_DIR" in completed.stdout


def test_conformance_without_the_spec_fails_under_ci(tmp_path: Path) -> None:
    completed = make("conformance", REALWORLD_API_DIR=str(tmp_path), CI="true")

    assert completed.returncode != 0
    assert "conformance: " in completed.stderr
    assert "(CI=true)" in completed.stderr


def test_the_migrations_doc_names_every_revision_file() -> None:
    page = (ROOT / "docs" / "migrations.md").read_text(encoding="utf-8")
    files = sorted(path.name for path in (ROOT / "migrations" / "versions").glob("*.py"))

    assert [name for name in files if name not in page] == []
