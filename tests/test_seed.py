"""``flask seed``: sizes as options, realistic rows, usable accounts."""

from __future__ import annotations

import re

from flask import Flask

from app.data.seed import SEED_PASSWORD, SeedSizes, seed
from app.extensions import db

SMALL = SeedSizes(
    users=12,
    articles=40,
    tags=8,
    tags_per_article=3,
    comments_per_article=2,
    follows_per_user=4,
    favorites_per_user=5,
    batch_size=7,  # several batches per table
)


def test_seed_makes_the_requested_volume(app: Flask, sql) -> None:
    with app.app_context():
        result = seed(SMALL, random_seed=1)
    assert result.counts == {
        "users": 12,
        "articles": 40,
        "article_tags": 120,
        "comments": 80,
        "follows": 48,
        "favorites": 60,
    }
    assert len(set(result.slugs)) == 40
    assert sql("SELECT count(*) FROM tags")[0][0] == 8
    assert sql("SELECT count(*) FROM follows WHERE follower_id = followed_id")[0][0] == 0
    per_article = sql("SELECT DISTINCT count(*) FROM article_tags GROUP BY article_id")
    assert per_article == [(3,)]


def test_seeding_twice_adds_a_second_set(app: Flask, sql) -> None:
    with app.app_context():
        first = seed(SMALL, random_seed=1)
        second = seed(SMALL, random_seed=1)
    assert first.prefix != second.prefix
    assert second.counts["articles"] == 80
    assert sql("SELECT count(*) FROM tags")[0][0] == 8  # tags are shared


def test_seeded_data_is_served_by_the_api(app: Flask, client) -> None:
    with app.app_context():
        result = seed(SMALL, random_seed=2)
    login = client.post(
        "/api/users/login",
        json={"user": {"email": f"{result.usernames[0]}@example.com", "password": SEED_PASSWORD}},
    )
    assert login.status_code == 200
    token = login.get_json()["user"]["token"]

    listing = client.get("/api/articles").get_json()
    assert listing["articlesCount"] == 40
    assert len(listing["articles"]) == 20
    assert len(listing["articles"][0]["tagList"]) == 3
    feed = client.get("/api/articles/feed", headers={"Authorization": f"Token {token}"})
    assert feed.get_json()["articlesCount"] > 0
    favorited = client.get(f"/api/articles?favorited={result.usernames[0]}").get_json()
    assert favorited["articlesCount"] == 5
    comments = client.get(f"/api/articles/{result.slugs[0]}/comments").get_json()
    assert len(comments["comments"]) == 2


def test_the_command_takes_sizes_as_options(app: Flask) -> None:
    runner = app.test_cli_runner()
    outcome = runner.invoke(
        args=["seed", "--users", "3", "--articles", "5", "--tags-per-article", "2",
              "--comments", "1", "--follows", "1", "--favorites", "2", "--random-seed", "3"]
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "users 3, articles 5, article_tags 10, comments 5, follows 3, favorites 6" in (
        outcome.output
    )
    with app.app_context():
        assert db.session.execute(db.text("SELECT count(*) FROM articles")).scalar() == 5


def test_the_command_says_how_far_it_got_and_a_login_that_works(app: Flask, client) -> None:
    outcome = app.test_cli_runner().invoke(args=["seed", "--users", "2", "--articles", "3"])

    assert outcome.exit_code == 0, outcome.output
    steps = outcome.output.splitlines()[:5]  # not a terminal: one line per finished step
    assert [line.split()[0] for line in steps] == [
        "users",
        "articles",
        "comments",
        "follows",
        "favorites",
    ]
    assert [line.split()[1] for line in steps[:2]] == ["2", "3"]
    (email, password) = re.fullmatch(
        r"Sign in as (\S+) with password '(.+)'\.", outcome.output.splitlines()[-1]
    ).groups()
    login = client.post("/api/users/login", json={"user": {"email": email, "password": password}})
    assert login.status_code == 200
    assert password == SEED_PASSWORD
