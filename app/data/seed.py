"""``flask seed``: fill the database with a realistic volume of data, fast.

Rows go in with Core ``INSERT … VALUES`` batches (SQLAlchemy's
"insertmanyvalues", with ``RETURNING`` for the ids it needs), one transaction
per batch, and a single password hash shared by every seeded user. Seeding
again adds another set of users and articles (names carry a per-run prefix);
tags are shared. 100,000 articles take about a minute.
"""

from __future__ import annotations

import random
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import click
from flask.cli import with_appcontext
from sqlalchemy import Table, insert, select, text

from app.data import counters
from app.data.slugs import base_slug
from app.data.upserts import insert_ignoring_conflicts
from app.extensions import db
from app.models import Article, ArticleTag, Base, Comment, Favorite, Follow, Tag, User
from app.security import hash_password
from app.text import identity_key

SEED_PASSWORD = "seed-password"  # noqa: S105  (documented: every seeded user has it)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


WORDS = _words(
    "api async backend build cache client cloud code compile data debug deploy design "
    "docker error event feature flask frontend function git graph http index java "
    "json kernel lambda latency library linux log memory merge model module network "
    "node object optimize package parse pattern pipeline python query queue react "
    "refactor release request rust scale schema script server service shell socket "
    "sql stack state stream struct system test thread token type unix update user "
    "value vector version web worker yaml zero"
)
TAG_WORDS = _words(
    "python javascript rust go devops databases testing security design performance "
    "frontend backend cloud career opensource tutorial architecture linux web postgres "
    "sqlite flask react css ai data tooling api mobile ux"
)

# ``progress(label, total)`` returns a context manager yielding ``advance(n)``.
Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


@dataclass(frozen=True)
class SeedSizes:
    users: int = 100
    articles: int = 1_000
    tags: int = 30
    tags_per_article: int = 3
    comments_per_article: int = 2
    follows_per_user: int = 10
    favorites_per_user: int = 10
    batch_size: int = 1_000


@dataclass
class SeedResult:
    prefix: str
    user_ids: list[int] = field(default_factory=list)
    usernames: list[str] = field(default_factory=list)
    article_ids: list[int] = field(default_factory=list)
    slugs: list[str] = field(default_factory=list)
    tag_names: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def sample_email(self) -> str:
        """The first seeded user's email: a login to try (password :data:`SEED_PASSWORD`)."""
        return f"{self.usernames[0]}@example.com"


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _no_progress(_label: str, _total: int) -> AbstractContextManager[Callable[[int], None]]:
    return nullcontext(lambda _n: None)


def _batches(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words))


def _tag_names(count: int) -> list[str]:
    names = list(TAG_WORDS[:count])
    names += [f"topic-{n}" for n in range(len(names), count)]
    return names


class _Seeder:
    def __init__(self, sizes: SeedSizes, rng: random.Random, progress: Progress, prefix: str):
        self.sizes = sizes
        self.rng = rng
        self.progress = progress
        self.result = SeedResult(prefix=prefix)
        self.now = datetime.now(UTC)

    def _insert(self, table: Table, rows: list[dict[str, Any]], returning: Any = None) -> list:
        """One multi-row INSERT (batched by the driver), committed; returns the ids asked for."""
        if not rows:
            return []
        stmt = insert(table)
        if returning is not None:
            stmt = stmt.returning(returning, sort_by_parameter_order=True)
            ids = list(db.session.execute(stmt, rows).scalars())
        else:
            db.session.execute(stmt, rows)
            ids = []
        db.session.commit()
        return ids

    def _moment(self, index: int, total: int) -> datetime:
        """Spread rows over the last year, later indexes newer."""
        seconds = 365 * 24 * 3600 * (total - index) / max(total, 1)
        return self.now - timedelta(seconds=seconds, microseconds=self.rng.randrange(1000))

    def users(self) -> None:
        sizes, prefix = self.sizes, self.result.prefix
        password_hash = hash_password(SEED_PASSWORD)  # once: argon2 is slow on purpose
        with self.progress("users", sizes.users) as advance:
            for batch in _batches(sizes.users, sizes.batch_size):
                rows: list[dict[str, Any]] = []
                for i in batch:
                    moment = self._moment(i, sizes.users)
                    username, email = f"{prefix}user{i}", f"{prefix}user{i}@example.com"
                    rows.append(
                        {
                            # Bulk inserts skip the model's key upkeep: set them here.
                            "username": username,
                            "username_key": identity_key(username),
                            "email": email,
                            "email_key": identity_key(email),
                            "password_hash": password_hash,
                            "bio": _sentence(self.rng, 12) if i % 3 else None,
                            "image": None,
                            "created_at": moment,
                            "updated_at": moment,
                        }
                    )
                self.result.user_ids += self._insert(_table(User), rows, _table(User).c.id)
                self.result.usernames += [row["username"] for row in rows]
                advance(len(rows))

    def tags(self) -> dict[str, int]:
        names = _tag_names(self.sizes.tags)
        insert_ignoring_conflicts(Tag, [{"name": name} for name in names])
        db.session.commit()
        self.result.tag_names = names
        return dict(db.session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names))).all())

    def articles(self, tag_ids: dict[str, int]) -> None:
        sizes, rng, prefix = self.sizes, self.rng, self.result.prefix
        user_ids, names = self.result.user_ids, self.result.tag_names
        # A few tags are much more popular than the rest, as on a real site.
        weights = [1 / (rank + 1) ** 0.5 for rank in range(len(names))]
        with self.progress("articles", sizes.articles) as advance:
            for batch in _batches(sizes.articles, sizes.batch_size):
                rows: list[dict[str, Any]] = []
                for i in batch:
                    moment = self._moment(i, sizes.articles)
                    title = f"{_sentence(rng, 5).capitalize()} {i}"
                    rows.append(
                        {
                            "slug": f"{base_slug(title)}-{prefix.rstrip('-')}",
                            "title": title,
                            "description": _sentence(rng, 20),
                            "body": "\n\n".join(_sentence(rng, 40) for _ in range(4)),
                            "author_id": user_ids[i % len(user_ids)],
                            "created_at": moment,
                            "updated_at": moment,
                        }
                    )
                ids = self._insert(_table(Article), rows, _table(Article).c.id)
                links = []
                for article_id in ids:
                    chosen: set[str] = set()
                    while len(chosen) < min(sizes.tags_per_article, len(names)):
                        chosen.add(rng.choices(names, weights)[0])
                    links += [{"article_id": article_id, "tag_id": tag_ids[n]} for n in chosen]
                self._insert(_table(ArticleTag), links)
                self.result.article_ids += ids
                self.result.slugs += [row["slug"] for row in rows]
                advance(len(rows))

    def comments(self) -> None:
        sizes, rng = self.sizes, self.rng
        article_ids, user_ids = self.result.article_ids, self.result.user_ids
        total = len(article_ids) * sizes.comments_per_article
        with self.progress("comments", total) as advance:
            for batch in _batches(total, sizes.batch_size):
                rows: list[dict[str, Any]] = []
                for i in batch:
                    moment = self._moment(i, total)
                    rows.append(
                        {
                            "body": _sentence(rng, 25),
                            "article_id": article_ids[i // sizes.comments_per_article],
                            "author_id": rng.choice(user_ids),
                            "created_at": moment,
                            "updated_at": moment,
                        }
                    )
                self._insert(_table(Comment), rows)
                advance(len(rows))

    def _pairs(self, per_user: int, targets: Sequence[int], skip_self: bool) -> list:
        pairs = []
        for position, user_id in enumerate(self.result.user_ids):
            count = min(per_user, len(targets) - (1 if skip_self else 0))
            if skip_self:  # the next users along, never oneself
                chosen = [targets[(position + k) % len(targets)] for k in range(1, count + 1)]
            else:
                chosen = self.rng.sample(targets, count)
            pairs += [(user_id, target) for target in chosen]
        return pairs

    def follows(self) -> None:
        pairs = self._pairs(self.sizes.follows_per_user, self.result.user_ids, True)
        self._insert_pairs("follows", _table(Follow), ("follower_id", "followed_id"), pairs)

    def favorites(self) -> None:
        pairs = self._pairs(self.sizes.favorites_per_user, self.result.article_ids, False)
        self._insert_pairs("favorites", _table(Favorite), ("user_id", "article_id"), pairs)

    def _insert_pairs(
        self, label: str, table: Table, columns: tuple[str, str], pairs: list[tuple[int, int]]
    ) -> None:
        with self.progress(label, len(pairs)) as advance:
            for batch in _batches(len(pairs), self.sizes.batch_size):
                rows = [
                    {columns[0]: a, columns[1]: b, "created_at": self.now}
                    for a, b in (pairs[i] for i in batch)
                ]
                self._insert(table, rows)
                advance(len(rows))


def seed(
    sizes: SeedSizes,
    *,
    prefix: str | None = None,
    random_seed: int | None = None,
    progress: Progress = _no_progress,
) -> SeedResult:
    """Insert a data set of ``sizes``; returns what was made (ids, names, counts)."""
    if sizes.users < 1 or sizes.articles < 0:
        raise ValueError("seed needs at least one user")
    started = time.perf_counter()
    prefix = prefix if prefix is not None else f"s{secrets.token_hex(3)}-"
    seeder = _Seeder(sizes, random.Random(random_seed), progress, prefix)  # noqa: S311
    seeder.users()
    tag_ids = seeder.tags()
    seeder.articles(tag_ids)
    seeder.comments()
    seeder.follows()
    seeder.favorites()
    counters.recount()  # bulk inserts bypass the per-write adjustments
    _refresh_statistics()
    result = seeder.result
    result.counts = {
        table: db.session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
        for table in ("users", "articles", "article_tags", "comments", "follows", "favorites")
    }
    result.seconds = time.perf_counter() - started
    return result


def _refresh_statistics() -> None:
    """Planner statistics (and, on PostgreSQL, visibility maps) for the new rows.

    Autovacuum would get there on its own; doing it now makes the first
    queries after seeding use the plans they will use in production.
    """
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE"))


@contextmanager
def _progressbar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar on a terminal; elsewhere (a pipe, a log, CI) one line per step when it is done."""
    if sys.stdout.isatty():
        with click.progressbar(length=total, label=f"{label:<10}", show_pos=True) as bar:
            yield bar.update
        return
    started, done = time.perf_counter(), 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows

    yield advance
    click.echo(f"{label:<10} {done:>9,} in {time.perf_counter() - started:.1f} s")


@click.command("seed")
@click.option("--users", default=SeedSizes.users, show_default=True, help="Users to create.")
@click.option("--articles", default=SeedSizes.articles, show_default=True, help="Articles.")
@click.option("--tags", default=SeedSizes.tags, show_default=True, help="Distinct tags.")
@click.option("--tags-per-article", default=SeedSizes.tags_per_article, show_default=True)
@click.option("--comments", default=SeedSizes.comments_per_article, show_default=True,
              help="Comments per article.")  # fmt: skip
@click.option("--follows", default=SeedSizes.follows_per_user, show_default=True,
              help="Users each user follows.")  # fmt: skip
@click.option("--favorites", default=SeedSizes.favorites_per_user, show_default=True,
              help="Articles each user favorites.")  # fmt: skip
@click.option("--batch-size", default=SeedSizes.batch_size, show_default=True)
@click.option("--random-seed", type=int, default=None, help="Repeatable content.")
@with_appcontext
def seed_command(
    users: int,
    articles: int,
    tags: int,
    tags_per_article: int,
    comments: int,
    follows: int,
    favorites: int,
    batch_size: int,
    random_seed: int | None,
) -> None:
    """Fill the database with users, articles, tags, comments, follows and favorites.

    Every seeded user's password is "seed-password".
    """
    sizes = SeedSizes(
        users=users,
        articles=articles,
        tags=tags,
        tags_per_article=tags_per_article,
        comments_per_article=comments,
        follows_per_user=follows,
        favorites_per_user=favorites,
        batch_size=batch_size,
    )
    result = seed(sizes, random_seed=random_seed, progress=_progressbar)
    totals = ", ".join(f"{table} {count:,}" for table, count in result.counts.items())
    click.echo(f"Seeded in {result.seconds:.1f} s (prefix {result.prefix!r}). Now: {totals}.")
    click.echo(f"Sign in as {result.sample_email} with password {SEED_PASSWORD!r}.")
