"""Reads run a fixed, small number of SQL statements whatever the page size."""

import pytest

from tests.factories import add_comment, auth, create_article, favorite, follow, register

MAX_LIST_STATEMENTS = 4  # viewer, count, page, tags


@pytest.fixture
def world(client):
    """25 articles with tags, favorites and comments, by an author the reader follows."""
    author = register(client, username="author")
    reader = register(client, username="reader")
    follow(client, reader, "author")
    slugs = []
    for n in range(25):
        article = create_article(client, author, tagList=[f"tag{n}", "common"])
        favorite(client, reader, article["slug"])
        slugs.append(article["slug"])
    for n in range(20):
        add_comment(client, reader, slugs[0], f"comment {n}")
    return {"reader": reader, "slugs": slugs}


def statements_for(client, count_queries, url, headers):
    with count_queries() as counter:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_json()
    return counter.count


LISTS = [
    "/api/articles?limit={n}",
    "/api/articles?tag=common&limit={n}",
    "/api/articles?author=author&limit={n}",
    "/api/articles?favorited=reader&limit={n}",
]


@pytest.mark.parametrize(
    ("url", "authenticated"),
    [(url, True) for url in [*LISTS, "/api/articles/feed?limit={n}"]]
    + [(url, False) for url in LISTS],
)
def test_article_lists_run_the_same_statements_for_1_and_20(
    client, count_queries, world, url, authenticated
):
    headers = auth(world["reader"]) if authenticated else {}

    one = statements_for(client, count_queries, url.format(n=1), headers)
    twenty = statements_for(client, count_queries, url.format(n=20), headers)

    assert one == twenty
    assert twenty <= MAX_LIST_STATEMENTS


def test_comment_list_statements_do_not_grow_with_comments(client, count_queries, world):
    reader = auth(world["reader"])
    few = statements_for(
        client, count_queries, f"/api/articles/{world['slugs'][1]}/comments", reader
    )
    many = statements_for(
        client, count_queries, f"/api/articles/{world['slugs'][0]}/comments", reader
    )

    assert few == many
    assert many <= 3  # viewer, article, comments


def test_tag_list_is_one_statement(client, count_queries, world):
    assert statements_for(client, count_queries, "/api/tags", {}) == 1


def test_single_article_read_is_bounded(client, count_queries, world):
    url = f"/api/articles/{world['slugs'][0]}"

    assert statements_for(client, count_queries, url, auth(world["reader"])) <= 3
    assert statements_for(client, count_queries, url, {}) <= 2
