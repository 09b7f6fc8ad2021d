"""Favoriting and unfavoriting articles."""

import pytest

from tests.factories import auth, create_article, favorite, follow, register


@pytest.fixture
def article(client):
    return create_article(client, register(client, username="jake"))


@pytest.fixture
def reader(client):
    return register(client, username="anna")


def test_favorite_returns_the_article_favorited(client, article, reader):
    response = client.post(f"/api/articles/{article['slug']}/favorite", headers=auth(reader))

    assert response.status_code == 200
    favorited = response.get_json()["article"]
    assert favorited["favorited"] is True
    assert favorited["favoritesCount"] == 1
    assert favorited["body"] == article["body"]


def test_favoriting_twice_counts_once(client, article, reader):
    favorite(client, reader, article["slug"])

    response = client.post(f"/api/articles/{article['slug']}/favorite", headers=auth(reader))

    assert response.get_json()["article"]["favoritesCount"] == 1


def test_favorites_count_counts_every_user(client, article, reader):
    favorite(client, reader, article["slug"])
    favorite(client, register(client), article["slug"])

    response = client.get(f"/api/articles/{article['slug']}", headers=auth(reader))

    assert response.get_json()["article"]["favoritesCount"] == 2
    assert response.get_json()["article"]["favorited"] is True


def test_unfavorite(client, article, reader):
    favorite(client, reader, article["slug"])

    response = client.delete(f"/api/articles/{article['slug']}/favorite", headers=auth(reader))

    assert response.status_code == 200
    assert response.get_json()["article"]["favorited"] is False
    assert response.get_json()["article"]["favoritesCount"] == 0


def test_unfavoriting_an_article_not_favorited_is_not_an_error(client, article, reader):
    response = client.delete(f"/api/articles/{article['slug']}/favorite", headers=auth(reader))

    assert response.status_code == 200
    assert response.get_json()["article"]["favoritesCount"] == 0


@pytest.mark.parametrize("method", ["post", "delete"])
def test_favorite_unknown_article_is_404(client, reader, method):
    response = getattr(client, method)("/api/articles/nope/favorite", headers=auth(reader))

    assert response.status_code == 404


@pytest.mark.parametrize("method", ["post", "delete"])
def test_favorite_requires_a_token(client, article, method):
    response = getattr(client, method)(f"/api/articles/{article['slug']}/favorite")

    assert response.status_code == 401


@pytest.mark.parametrize("method", ["post", "delete"])
def test_a_favorites_answer_is_the_articles_answer_after_it(client, reader, method):
    """Byte for byte what ``GET`` then answers the same user: the count others' favorites
    make, this user's change, the tags, the author's profile and whether they follow them."""
    author = register(client, username="jake")
    follow(client, reader, "jake")
    article = create_article(client, author, tagList=["zebra", "apple"])
    url = f"/api/articles/{article['slug']}"
    for other in ("kim", "lee"):
        favorite(client, register(client, username=other), article["slug"])
    if method == "delete":
        favorite(client, reader, article["slug"])

    changed = getattr(client, method)(f"{url}/favorite", headers=auth(reader))
    read = client.get(url, headers=auth(reader))

    assert changed.status_code == 200
    assert changed.get_data() == read.get_data()
    assert changed.get_json()["article"]["favoritesCount"] == (3 if method == "post" else 2)
