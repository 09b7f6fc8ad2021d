"""Retries after a PostgreSQL ``lock_timeout``: a whole revision, or one autocommit step.

Every migration session runs under a short ``lock_timeout``
(``MIGRATION_LOCK_TIMEOUT``, migrations/env.py), so DDL that cannot get its
lock fails with SQLSTATE 55P03 (``lock_not_available``) instead of queueing
every request behind it. What fails is then tried again after a pause that
doubles each time, with full jitter (the AWS Architecture Blog's "Exponential
Backoff and Jitter"), up to ``MIGRATION_LOCK_RETRIES`` more attempts, one line
printed per retry:

- a **revision** is re-run whole only when it committed nothing: each
  PostgreSQL revision is its own transaction (``transaction_per_migration``),
  so a failed one rolled back whole; one that entered an autocommit block has
  committed part of itself and is not re-run (:class:`RevisionRetry`);
- a step inside an autocommit block (``app.db.ops``: ``CREATE INDEX
  CONCURRENTLY``, ``VALIDATE CONSTRAINT``) retries itself (:func:`retrying`).

strong_migrations (lock_timeout_retries) and pgroll (pkg/db/db.go) do the same.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy.exc import DBAPIError

LOCK_NOT_AVAILABLE = "55P03"
MAX_DELAY = 30.0  # seconds: the longest single pause
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` attempts after the first; ``delay`` seconds before the first retry."""

    retries: int = 5
    delay: float = 1.0

    def pauses(self) -> Iterator[float]:
        """Seconds to sleep before each retry: full jitter over ``delay * 2**n``, capped."""
        for attempt in range(self.retries):
            yield random.uniform(0, min(MAX_DELAY, self.delay * 2**attempt))  # noqa: S311


def current_policy() -> RetryPolicy:
    """The app's ``MIGRATION_LOCK_RETRIES`` and ``MIGRATION_RETRY_DELAY`` (defaults outside one)."""
    from flask import current_app, has_app_context

    if not has_app_context():
        return RetryPolicy()
    config = current_app.config
    return RetryPolicy(
        int(config.get("MIGRATION_LOCK_RETRIES", 5)),
        float(config.get("MIGRATION_RETRY_DELAY", 1.0)),
    )


def is_lock_timeout(error: BaseException) -> bool:
    """True for PostgreSQL's SQLSTATE 55P03, as SQLAlchemy or psycopg raises it."""
    original = error.orig if isinstance(error, DBAPIError) else error
    return getattr(original, "sqlstate", None) == LOCK_NOT_AVAILABLE


def retrying(
    step: Callable[[], T],
    what: str,
    policy: RetryPolicy | None = None,
    echo: Callable[[str], None] = print,
    before_retry: Callable[[], None] | None = None,
) -> T:
    """Run ``step``; on a lock timeout sleep and run it again, ``policy.retries`` times at most.

    For statements that commit on their own (an autocommit block). The last
    lock timeout is raised as it came. ``before_retry`` runs before each
    retry (a backfill rolls back the failed batch's transaction).
    """
    pauses = (policy or current_policy()).pauses()
    attempt = 1
    while True:
        try:
            return step()
        except DBAPIError as error:
            if not is_lock_timeout(error):
                raise
            pause = next(pauses, None)
            if pause is None:
                raise
            attempt += 1
            reason = str(error.orig).splitlines()[0]
            echo(f"lock timeout ({reason}): {what}; attempt {attempt} in {pause:.1f}s")
            time.sleep(pause)
            if before_retry is not None:
                before_retry()


class _Final(Exception):
    """A lock timeout that must not be retried, carried past :func:`retrying`."""

    def __init__(self, error: DBAPIError):
        super().__init__(str(error))
        self.error = error


class RevisionRetry:
    """Re-runs the pending revisions after a lock timeout, unless the failed one committed.

    ``on_version_apply`` (Alembic calls it inside each revision's transaction,
    just before its commit) marks where the next revision starts; any commit
    past that mark (an autocommit block) means the failed revision is partly
    applied and the error goes up as it is.
    """

    def __init__(self, policy: RetryPolicy | None = None, echo: Callable[[str], None] = print):
        self.policy = policy
        self.echo = echo
        self.commits = 0
        self.expected = 0

    def on_version_apply(self, **_kw: Any) -> None:
        self.expected = self.commits + 1  # the applied revision's own commit, about to happen

    def _count(self, _connection: Connection) -> None:
        self.commits += 1

    def run(self, connection: Connection, run_migrations: Callable[[], None]) -> None:
        """``run_migrations()`` (``context.run_migrations``) with whole-revision retries."""
        if connection.dialect.name != "postgresql" or connection.in_transaction():
            run_migrations()  # SQLite, or the caller's transaction: nothing can be re-run
            return
        event.listen(connection, "commit", self._count)
        try:
            self.expected = self.commits
            retrying(self._once(run_migrations), "revision", self.policy, self.echo)
        except _Final as final:
            raise final.error from None
        finally:
            event.remove(connection, "commit", self._count)

    def _once(self, run_migrations: Callable[[], None]) -> Callable[[], None]:
        def attempt() -> None:
            try:
                run_migrations()
            except DBAPIError as error:
                if is_lock_timeout(error) and self.commits > self.expected:
                    self.echo(
                        "lock timeout in a revision that committed part of itself (an "
                        "autocommit block): not re-run; its safe_* steps retry themselves"
                    )
                    raise _Final(error) from error
                raise

        return attempt
