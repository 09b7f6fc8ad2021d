"""The previous-release gate, served: both releases' APIs on the expand schema, under Postman.

The second half of ``make migration-check`` (after ``flask db gate``, whose
app/db/release_gate.py compares tables and columns). A scratch PostgreSQL
database is migrated by the new revisions to the expand target of the release
after ``migrations/RELEASED``: the schema both releases serve on while
replicas are replaced. On it, in turn, ``scripts/conformance.sh`` (the public
Postman collection, newman) runs against gunicorn serving

1. the released commit's code (a detached git worktree, its own ``wsgi:app``
   and ``gunicorn.conf.py``), as production runs it now;
2. this checkout's code, as the first new replica starts;
3. this checkout's code again after the contract revisions, when there are any.

Production settings (``APP_ENV=production``, a random ``SECRET_KEY``). A failed
run prints newman's failed requests and exits 1. With ``RELEASED`` at the head
there is nothing new, and it says so. Without PostgreSQL, git history or the
released commit it skips, except with ``CI=true``, where that is a failure::

    python -m scripts.release_conformance
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scripts import throwaway

if TYPE_CHECKING:
    from app.db.released import Release

CONFORMANCE = throwaway.ROOT / "scripts" / "conformance.sh"
_FAILED_REQUEST = re.compile(r'inside "([^"]+)"')
_SERVER_ERROR = re.compile(r'"([A-Z]+ \S+) HTTP/[\d.]+" (5\d\d) ')
_EXCEPTION = re.compile(r"^\w[\w.]*(?:Error|Exception): .*$", re.MULTILINE)
_SCHEMA_DRIFT = re.compile(r"Schema drift: (.+?); answering 503")  # app/data/schema_drift.py
MAX_REPORT_LINES = 40


def main() -> int:
    """``python -m scripts.release_conformance``: 0 when every run passes (or there is none)."""
    from app.config import seal_environment

    seal_environment()
    from app.db.history import GitError
    from app.db.released import ReleasedError, checkout
    from app.db.scratch import ScratchUnavailable, in_ci

    settings = {"APP_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(32)}
    try:
        plan = _plan(settings)
        if isinstance(plan, str):
            print(f"ok    served previous release: {plan}")
            return 0
        release, root, target, head = plan
        with (
            throwaway.database("postgresql", label="release") as url,
            checkout(root, release.commit) as previous_code,
        ):
            runs = [(f"the released code ({release})", previous_code, target)]
            runs.append(("the new code", throwaway.ROOT, target))
            if head != target:
                runs.append(("the new code", throwaway.ROOT, head))
            failed = [
                label
                for label, code, at in runs
                if not suite_passes(label, code, url, settings, at)
            ]
    except ReleasedError as error:
        print(f"FAIL  served previous release: {error}", file=sys.stderr)
        return 1
    except (ScratchUnavailable, GitError) as error:
        if in_ci():
            print(f"FAIL  served previous release: required when CI=true: {error}", file=sys.stderr)
            return 1
        print(f"skip  served previous release: {error} (required when CI=true)")
        return 0
    except throwaway.ThrowawayError as error:
        print(f"FAIL  served previous release: {error}", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _plan(settings: dict[str, str]) -> str | tuple[Release, Path, str, str]:
    """``(release, repository root, expand target, head)``, or why there is nothing to serve."""
    from app import create_app
    from app.db.alembic_setup import migrations_directory, script_directory
    from app.db.history import repository_root
    from app.db.phases import expand_target
    from app.db.released import read_released, released_file

    app = create_app({**settings, "DATABASE_URL": "sqlite://"})  # no database is touched
    with app.app_context():
        migrations = migrations_directory()
        if not released_file(migrations).is_file():
            return "no migrations/RELEASED: no release recorded yet"
        release = read_released(migrations)
        scripts = script_directory()
        head = scripts.get_current_head() or "base"
        if head == release.revision:
            return f"RELEASED is the head ({release}): nothing new to serve it on"
        target = expand_target(scripts, release.revision) or "base"
    return release, repository_root(migrations), target, head


def suite_passes(label: str, code: Path, url: str, settings: dict[str, str], at: str) -> bool:
    """Serve ``code`` on ``url`` upgraded to ``at``, run the Postman suite; print the verdict."""
    throwaway.migrate(url, settings, target=at)
    with throwaway.serve(url, settings=settings, root=code) as server:
        done = subprocess.run(  # noqa: S603 - our own script
            [str(CONFORMANCE)],
            env={**os.environ, "THROWAWAY_URL": server.base_url},
            capture_output=True,
            text=True,
            check=False,
        )
        log = server.log()
    where = f"{label} on the schema at {at}"
    if done.returncode == 0 and "conformance: skipped" in done.stdout:
        print(f"skip  served previous release: {done.stdout.strip()}")
        return True
    if done.returncode == 0:
        print(f"ok    {where}: the Postman suite passes")
        return True
    print(f"FAIL  {where}: the Postman suite failed", file=sys.stderr)
    print(failure_report(done.stdout + done.stderr, log), file=sys.stderr)
    return False


def failure_report(newman: str, log: str) -> str:
    """The server's errors and 5xx answers, the failed requests (newman's names): deduplicated."""
    errors = _EXCEPTION.findall(log) + [
        "schema drift: " + found.replace('\\"', '"') for found in _SCHEMA_DRIFT.findall(log)
    ]
    lines = [f"      server error: {line}" for line in dict.fromkeys(errors)]
    requests = list(dict.fromkeys(_FAILED_REQUEST.findall(newman)))
    answered = dict.fromkeys(
        f"{status} to {request}" for request, status in _SERVER_ERROR.findall(log)
    )
    lines += [f"      server answered: {line}" for line in answered]
    lines += [f"      failed request: {name}" for name in requests]
    if not requests:  # not the assertions: newman itself failed
        lines.append(newman[-3000:])
    return "\n".join(lines[:MAX_REPORT_LINES])


if __name__ == "__main__":
    sys.exit(main())
