"""Creating, reading, updating and deleting articles."""

import re

import pytest

from app.articles import service as articles_service
from tests.factories import auth, create_article, register

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
NEW_ARTICLE = {
    "title": "How to train your dragon",
    "description": "Ever wonder how?",
    "body": "You have to believe",
    "tagList": ["reactjs", "angularjs", "dragons"],
}


@pytest.fixture
def author(client):
    return register(client, username="jake")


def test_create_returns_201_with_the_article(client, author):
    response = client.post("/api/articles", json={"article": NEW_ARTICLE}, headers=auth(author))

    assert response.status_code == 201
    article = response.get_json()["article"]
    assert article["slug"] == "how-to-train-your-dragon"
    assert article["title"] == NEW_ARTICLE["title"]
    assert article["description"] == NEW_ARTICLE["description"]
    assert article["body"] == NEW_ARTICLE["body"]
    assert article["favorited"] is False
    assert article["favoritesCount"] == 0
    assert article["author"] == {"username": "jake", "bio": None, "image": None, "following": False}


def test_timestamps_are_utc_with_milliseconds(client, author):
    article = create_article(client, author)

    assert TIMESTAMP.match(article["createdAt"])
    assert TIMESTAMP.match(article["updatedAt"])


def test_tags_are_deduplicated_and_read_back_alphabetically(client, author):
    article = create_article(client, author, tagList=["training", "dragons", "training"])

    assert article["tagList"] == ["dragons", "training"]


@pytest.mark.parametrize(
    "tags",
    [
        [],
        ["training", "dragons", "training"],
        [
            "Zebra",
            "apple",
            "Apple",
            "ä",
            "a\u0308",
            "日本",
            "\uff46\uff55\uff4c\uff4c",
            "  padded  ",
        ],
    ],
    ids=["none", "repeated", "cases, accents and widths"],
)
def test_the_creations_answer_is_the_articles_answer_to_its_author(client, author, tags):
    """The creation answers from what it wrote, not by reading the article back: byte for byte
    what ``GET`` then answers its author, whatever spellings the tags came in."""
    create_article(client, author, tagList=["apple"])  # one of the tags already exists
    created = client.post(
        "/api/articles", json={"article": {**NEW_ARTICLE, "tagList": tags}}, headers=auth(author)
    )

    read = client.get(
        f"/api/articles/{created.get_json()['article']['slug']}", headers=auth(author)
    )

    assert created.status_code == 201
    assert created.get_data() == read.get_data()


def test_tag_list_is_optional(client, author):
    fields = {k: v for k, v in NEW_ARTICLE.items() if k != "tagList"}

    response = client.post("/api/articles", json={"article": fields}, headers=auth(author))

    assert response.status_code == 201
    assert response.get_json()["article"]["tagList"] == []


@pytest.mark.parametrize("field", ["title", "description", "body"])
def test_create_requires_each_field(client, author, field):
    fields = {k: v for k, v in NEW_ARTICLE.items() if k != field}

    response = client.post("/api/articles", json={"article": fields}, headers=auth(author))

    assert response.status_code == 422
    assert response.get_json() == {"errors": {field: ["can't be blank"]}}


def test_create_rejects_blank_tags(client, author):
    response = client.post(
        "/api/articles",
        json={"article": {**NEW_ARTICLE, "tagList": ["ok", " "]}},
        headers=auth(author),
    )

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"tagList": ["can't be blank"]}}


def test_create_rejects_a_tag_list_that_is_not_a_list(client, author):
    response = client.post(
        "/api/articles",
        json={"article": {**NEW_ARTICLE, "tagList": "dragons"}},
        headers=auth(author),
    )

    assert response.status_code == 422
    assert "tagList" in response.get_json()["errors"]


def test_create_requires_a_token(client):
    response = client.post("/api/articles", json={"article": NEW_ARTICLE})

    assert response.status_code == 401


def test_same_title_gets_a_suffixed_slug(client, author):
    first = create_article(client, author, title="Same title")
    second = create_article(client, author, title="Same title")
    third = create_article(client, author, title="Same title")

    assert [first["slug"], second["slug"], third["slug"]] == [
        "same-title",
        "same-title-2",
        "same-title-3",
    ]


def test_a_slug_taken_on_every_attempt_answers_422_and_writes_nothing(
    client, author, monkeypatch, sql
):
    """Every attempt lost its slug to a concurrent request (here: the chosen one is taken)."""
    create_article(client, author, title="Taken")
    monkeypatch.setattr(articles_service, "unique_slug", lambda title: "taken")

    response = client.post(
        "/api/articles", json={"article": {**NEW_ARTICLE, "title": "Taken"}}, headers=auth(author)
    )

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"slug": ["has already been taken, please retry"]}}
    assert sql("SELECT count(*) FROM articles") == [(1,)]


def test_a_create_whose_author_vanished_answers_404(client, author, monkeypatch, sql, database_url):
    """The article's insert violates its foreign key (the author deleted as it ran).

    PostgreSQL names the constraint, hence the table; SQLite names neither.
    """
    insert, insert_tagged = (
        articles_service._insert_article,
        articles_service._insert_tagged_article,
    )

    def insert_for_no_one(values, *args):
        return insert({**values, "author_id": 10**6}, *args)

    def insert_tagged_for_no_one(values, *args):  # PostgreSQL's one-statement creation
        return insert_tagged({**values, "author_id": 10**6}, *args)

    monkeypatch.setattr(articles_service, "_insert_article", insert_for_no_one)
    monkeypatch.setattr(articles_service, "_insert_tagged_article", insert_tagged_for_no_one)

    response = client.post("/api/articles", json={"article": NEW_ARTICLE}, headers=auth(author))

    assert response.status_code == 404
    field = "profile" if database_url.startswith("postgresql") else "body"
    assert response.get_json() == {"errors": {field: ["not found"]}}
    assert sql("SELECT count(*) FROM articles") == [(0,)]


def test_title_without_letters_still_gets_a_slug(client, author):
    article = create_article(client, author, title="!!!")

    assert article["slug"] == "article"


def test_get_article_by_slug(client, author):
    created = create_article(client, author)

    response = client.get(f"/api/articles/{created['slug']}")

    assert response.status_code == 200
    assert response.get_json() == {"article": created}


def test_get_unknown_article_is_404(client):
    response = client.get("/api/articles/no-such-article")

    assert response.status_code == 404
    assert response.get_json() == {"errors": {"article": ["not found"]}}


def test_update_changes_fields_and_rederives_slug(client, author):
    article = create_article(client, author, title="Old title")

    response = client.put(
        f"/api/articles/{article['slug']}",
        json={"article": {"title": "New title", "body": "New body"}},
        headers=auth(author),
    )

    assert response.status_code == 200
    updated = response.get_json()["article"]
    assert updated["slug"] == "new-title"
    assert updated["title"] == "New title"
    assert updated["body"] == "New body"
    assert updated["description"] == article["description"]
    assert client.get("/api/articles/old-title").status_code == 404


def test_update_keeps_slug_when_title_is_unchanged(client, author):
    article = create_article(client, author, title="Same")

    response = client.put(
        f"/api/articles/{article['slug']}",
        json={"article": {"description": "changed"}},
        headers=auth(author),
    )

    assert response.get_json()["article"]["slug"] == "same"


def test_update_moves_updated_at_forward(client, author):
    article = create_article(client, author)

    response = client.put(
        f"/api/articles/{article['slug']}", json={"article": {"body": "x"}}, headers=auth(author)
    )

    updated = response.get_json()["article"]
    assert updated["updatedAt"] >= article["updatedAt"]
    assert updated["createdAt"] == article["createdAt"]


def test_update_can_replace_tags(client, author):
    article = create_article(client, author, tagList=["a", "b"])

    response = client.put(
        f"/api/articles/{article['slug']}",
        json={"article": {"tagList": ["c"]}},
        headers=auth(author),
    )

    assert response.get_json()["article"]["tagList"] == ["c"]


def test_update_requires_at_least_one_field(client, author):
    article = create_article(client, author)

    response = client.put(
        f"/api/articles/{article['slug']}", json={"article": {}}, headers=auth(author)
    )

    assert response.status_code == 422


def test_non_author_gets_403_on_update(client, author):
    article = create_article(client, author)
    other = register(client)

    response = client.put(
        f"/api/articles/{article['slug']}", json={"article": {"title": "Mine"}}, headers=auth(other)
    )

    assert response.status_code == 403
    assert response.get_json() == {"errors": {"article": ["is not yours"]}}


def test_update_unknown_article_is_404(client, author):
    response = client.put(
        "/api/articles/nope", json={"article": {"title": "x"}}, headers=auth(author)
    )

    assert response.status_code == 404


def test_delete_returns_204_and_removes_the_article(client, author):
    article = create_article(client, author)

    response = client.delete(f"/api/articles/{article['slug']}", headers=auth(author))

    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"/api/articles/{article['slug']}").status_code == 404


def test_delete_removes_comments_and_favorites_too(client, author, sql):
    article = create_article(client, author, tagList=["t"])
    reader = register(client)
    client.post(f"/api/articles/{article['slug']}/favorite", headers=auth(reader))
    client.post(
        f"/api/articles/{article['slug']}/comments",
        json={"comment": {"body": "hi"}},
        headers=auth(reader),
    )

    client.delete(f"/api/articles/{article['slug']}", headers=auth(author))

    assert sql("SELECT count(*) FROM comments") == [(0,)]
    assert sql("SELECT count(*) FROM favorites") == [(0,)]
    assert sql("SELECT count(*) FROM article_tags") == [(0,)]


def test_non_author_gets_403_on_delete(client, author):
    article = create_article(client, author)
    other = register(client)

    response = client.delete(f"/api/articles/{article['slug']}", headers=auth(other))

    assert response.status_code == 403
    assert client.get(f"/api/articles/{article['slug']}").status_code == 200


def test_delete_requires_a_token(client, author):
    article = create_article(client, author)

    response = client.delete(f"/api/articles/{article['slug']}")

    assert response.status_code == 401


def test_title_feed_gets_a_slug_that_does_not_collide_with_the_feed(client, author):
    article = create_article(client, author, title="Feed")

    assert article["slug"] == "feed-2"
    assert client.get("/api/articles/feed-2").get_json()["article"]["title"] == "Feed"


@pytest.mark.parametrize("method", ["put", "delete"])
def test_feed_path_is_not_an_article(client, author, method):
    response = getattr(client, method)(
        "/api/articles/feed", json={"article": {"title": "x"}}, headers=auth(author)
    )

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize(
    "blank",
    ["\u3164", "\u2800", "\u034f", "\u200b\u3000"],
    ids=["filler", "braille", "cgj", "zwsp"],
)
def test_text_that_shows_nothing_is_blank(client, jake, auth_headers, blank):
    article = {"title": blank, "description": blank, "body": blank}

    response = client.post("/api/articles", json={"article": article}, headers=auth_headers(jake))

    assert response.status_code == 422
    assert response.get_json() == {
        "errors": {field: ["can't be blank"] for field in ("title", "description", "body")}
    }
