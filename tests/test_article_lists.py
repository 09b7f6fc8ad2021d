"""Listing articles: order, filters, paging, the feed and viewer-dependent fields."""

import pytest

from tests.factories import auth, create_article, favorite, follow, register


def slugs(response):
    return [article["slug"] for article in response.get_json()["articles"]]


def test_empty_list(client):
    response = client.get("/api/articles")

    assert response.status_code == 200
    assert response.get_json() == {"articles": [], "articlesCount": 0}


def test_most_recent_first(client, jake):
    first = create_article(client, jake)
    second = create_article(client, jake)

    response = client.get("/api/articles")

    assert slugs(response) == [second["slug"], first["slug"]]


def test_list_items_omit_the_body(client, jake):
    create_article(client, jake)

    [item] = client.get("/api/articles").get_json()["articles"]

    assert "body" not in item
    assert set(item) == {
        "slug",
        "title",
        "description",
        "tagList",
        "createdAt",
        "updatedAt",
        "favorited",
        "favoritesCount",
        "author",
    }


def test_filter_by_tag(client, jake):
    tagged = create_article(client, jake, tagList=["dragons"])
    create_article(client, jake, tagList=["other"])

    assert slugs(client.get("/api/articles?tag=dragons")) == [tagged["slug"]]


def test_filter_by_author(client, jake, anna):
    mine = create_article(client, jake)
    create_article(client, anna)

    assert slugs(client.get("/api/articles?author=jake")) == [mine["slug"]]


def test_filter_by_favorited(client, jake, anna):
    liked = create_article(client, jake)
    create_article(client, jake)
    favorite(client, anna, liked["slug"])

    assert slugs(client.get("/api/articles?favorited=anna")) == [liked["slug"]]


def test_filters_combine(client, jake, anna):
    match = create_article(client, jake, tagList=["dragons"])
    create_article(client, jake, tagList=["other"])
    other_author = create_article(client, anna, tagList=["dragons"])
    favorite(client, anna, match["slug"])
    favorite(client, anna, other_author["slug"])

    response = client.get("/api/articles?tag=dragons&author=jake&favorited=anna")

    assert slugs(response) == [match["slug"]]
    assert response.get_json()["articlesCount"] == 1


def test_unknown_filter_values_match_nothing(client, jake):
    create_article(client, jake)

    for query in ("tag=nope", "author=nobody", "favorited=nobody"):
        assert client.get(f"/api/articles?{query}").get_json() == {
            "articles": [],
            "articlesCount": 0,
        }


def test_limit_and_offset_page_through_results(client, jake):
    created = [create_article(client, jake)["slug"] for _ in range(5)]
    newest_first = created[::-1]

    response = client.get("/api/articles?limit=2&offset=1")

    assert slugs(response) == newest_first[1:3]
    assert response.get_json()["articlesCount"] == 5


def test_default_limit_is_20(client, jake):
    for _ in range(21):
        create_article(client, jake)

    response = client.get("/api/articles")

    assert len(slugs(response)) == 20
    assert response.get_json()["articlesCount"] == 21


def test_offset_past_the_end_is_empty_but_counts(client, jake):
    create_article(client, jake)

    response = client.get("/api/articles?offset=10")

    assert response.get_json() == {"articles": [], "articlesCount": 1}


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=abc", "offset=-1", "offset=99999999999999999999"]
)
def test_invalid_paging_is_422(client, query):
    response = client.get(f"/api/articles?{query}")

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [query.split("=")[0]]


def test_favorited_and_count_depend_on_the_viewer(client, jake, anna):
    article = create_article(client, jake)
    favorite(client, anna, article["slug"])

    as_anna = client.get("/api/articles", headers=auth(anna)).get_json()["articles"][0]
    as_jake = client.get("/api/articles", headers=auth(jake)).get_json()["articles"][0]
    anonymous = client.get("/api/articles").get_json()["articles"][0]

    assert (as_anna["favorited"], as_anna["favoritesCount"]) == (True, 1)
    assert (as_jake["favorited"], as_jake["favoritesCount"]) == (False, 1)
    assert (anonymous["favorited"], anonymous["favoritesCount"]) == (False, 1)


def test_following_depends_on_the_viewer(client, jake, anna):
    create_article(client, jake)
    follow(client, anna, "jake")

    as_anna = client.get("/api/articles", headers=auth(anna)).get_json()["articles"][0]
    anonymous = client.get("/api/articles").get_json()["articles"][0]

    assert as_anna["author"]["following"] is True
    assert anonymous["author"]["following"] is False


def test_feed_shows_followed_authors_only(client, jake, anna):
    followed = create_article(client, jake)
    create_article(client, register(client))
    follow(client, anna, "jake")

    response = client.get("/api/articles/feed", headers=auth(anna))

    assert slugs(response) == [followed["slug"]]
    assert response.get_json()["articlesCount"] == 1
    assert response.get_json()["articles"][0]["author"]["following"] is True


def test_feed_pages_and_counts(client, jake, anna):
    for _ in range(3):
        create_article(client, jake)
    follow(client, anna, "jake")

    response = client.get("/api/articles/feed?limit=1&offset=1", headers=auth(anna))

    assert len(slugs(response)) == 1
    assert response.get_json()["articlesCount"] == 3


def test_empty_feed(client, anna):
    response = client.get("/api/articles/feed", headers=auth(anna))

    assert response.get_json() == {"articles": [], "articlesCount": 0}


def test_feed_requires_a_token(client):
    response = client.get("/api/articles/feed")

    assert response.status_code == 401


@pytest.mark.parametrize(
    "value",
    ["\u0665", "\uff15", " 5", "5 ", "+5", "5_0", "5.0"],
    ids=[
        "arabic-indic",
        "fullwidth",
        "leading space",
        "trailing space",
        "plus",
        "underscore",
        "decimal",
    ],
)
@pytest.mark.parametrize("parameter", ["limit", "offset"])
def test_limit_and_offset_take_ascii_digits_only(client, parameter, value):
    response = client.get("/api/articles", query_string={parameter: value})

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [parameter]
