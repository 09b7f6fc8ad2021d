"""The tags in use."""

import pytest

from tests.factories import auth, create_article, register


def test_no_tags(client):
    response = client.get("/api/tags")

    assert response.status_code == 200
    assert response.get_json() == {"tags": []}


def test_tags_in_use_most_used_first(client):
    jake = register(client)
    create_article(client, jake, tagList=["dragons", "training"])
    create_article(client, jake, tagList=["dragons"])

    assert client.get("/api/tags").get_json() == {"tags": ["dragons", "training"]}


def test_tags_of_deleted_articles_disappear(client):
    jake = register(client)
    article = create_article(client, jake, tagList=["gone"])

    client.delete(f"/api/articles/{article['slug']}", headers=auth(jake))

    assert client.get("/api/tags").get_json() == {"tags": []}


# What the example reads back on every database: code point order.
MIXED_CASE = ["b", "A", "a", "B", "a-c", "ab"]
CODE_POINT_ORDER = ["A", "B", "a", "a-c", "ab", "b"]


def test_an_articles_tags_read_back_in_code_point_order_on_every_collation(collating_client):
    jake = register(collating_client)

    article = create_article(collating_client, jake, tagList=MIXED_CASE)

    assert article["tagList"] == CODE_POINT_ORDER
    listed = collating_client.get("/api/articles").get_json()["articles"][0]
    assert listed["tagList"] == CODE_POINT_ORDER


def test_equally_used_tags_list_in_code_point_order_on_every_collation(collating_client):
    jake = register(collating_client)
    create_article(collating_client, jake, tagList=MIXED_CASE)

    assert collating_client.get("/api/tags").get_json() == {"tags": CODE_POINT_ORDER}


@pytest.mark.parametrize(
    "spelling",
    [
        "\uff54\uff41\uff47",  # fullwidth
        " tag ",
        "tag\u200b",  # ZERO WIDTH SPACE
        "\ufefftag",  # BYTE ORDER MARK
        "t\u00adag",  # SOFT HYPHEN
        "tag\u2060",  # WORD JOINER
        "\u00a0tag\u3000",  # no-break and ideographic spaces
        "tag\u034f",  # COMBINING GRAPHEME JOINER (a mark that shows nothing)
        "tag\u3164",  # HANGUL FILLER (a letter that shows nothing)
        "t\u115fag",  # HANGUL CHOSEONG FILLER
        "tag\u2800",  # BRAILLE PATTERN BLANK
        "tag\ufe0f",  # VARIATION SELECTOR-16
    ],
    ids=[
        "fullwidth",
        "spaces",
        "zwsp",
        "bom",
        "soft hyphen",
        "word joiner",
        "unicode spaces",
        "grapheme joiner",
        "hangul filler",
        "choseong filler",
        "braille blank",
        "variation selector",
    ],
)
def test_tags_that_read_the_same_are_one_tag(client, spelling):
    jake = register(client)

    article = create_article(client, jake, tagList=["tag", spelling])

    assert article["tagList"] == ["tag"]
    assert client.get("/api/tags").get_json() == {"tags": ["tag"]}


def test_tags_are_case_sensitive(client):
    jake = register(client)

    article = create_article(client, jake, tagList=["Tag", "tag"])

    assert article["tagList"] == ["Tag", "tag"]


def test_whitespace_inside_a_tag_is_one_space(client):
    jake = register(client)

    article = create_article(client, jake, tagList=["new  york", "new\tyork"])

    assert article["tagList"] == ["new york"]


def test_the_tag_filter_finds_a_tag_by_a_spelling_that_reads_the_same(client):
    jake = register(client)
    article = create_article(client, jake, tagList=["tag"])

    response = client.get("/api/articles", query_string={"tag": "\uff54\uff41\uff47\u200b"})

    assert [a["slug"] for a in response.get_json()["articles"]] == [article["slug"]]
    assert response.get_json()["articlesCount"] == 1


@pytest.mark.parametrize(
    "blank", ["\u200b", "\ufeff\u2060", " \u00ad ", "\u3164", "\u2800\u2800", "\u034f\uffa0"]
)
def test_a_tag_of_invisible_characters_is_blank(client, blank):
    jake = register(client)

    response = client.post(
        "/api/articles",
        json={"article": {"title": "t", "description": "d", "body": "b", "tagList": [blank]}},
        headers=auth(jake),
    )

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"tagList": ["can't be blank"]}}


def test_the_tag_length_limit_applies_to_the_stored_form(client):
    # U+FDFA is one character that NFKC spells as 18: six of them store 108.
    jake = register(client)

    response = client.post(
        "/api/articles",
        json={
            "article": {"title": "t", "description": "d", "body": "b", "tagList": ["\ufdfa" * 6]}
        },
        headers=auth(jake),
    )

    assert response.status_code == 422
    assert response.get_json() == {
        "errors": {"tagList": ["has a tag that is too long (maximum is 100 characters)"]}
    }
