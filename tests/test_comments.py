"""Comments on articles."""

import re

import pytest

from tests.factories import add_comment, auth, create_article, follow

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def article(client, jake):
    return create_article(client, jake)


def test_create_comment_returns_200_with_the_comment(client, article, anna):
    response = client.post(
        f"/api/articles/{article['slug']}/comments",
        json={"comment": {"body": "His name was my name too."}},
        headers=auth(anna),
    )

    assert response.status_code == 200
    comment = response.get_json()["comment"]
    assert isinstance(comment["id"], int)
    assert comment["body"] == "His name was my name too."
    assert TIMESTAMP.match(comment["createdAt"])
    assert TIMESTAMP.match(comment["updatedAt"])
    assert comment["author"] == {"username": "anna", "bio": None, "image": None, "following": False}


def test_comment_requires_a_body(client, article, anna):
    response = client.post(
        f"/api/articles/{article['slug']}/comments",
        json={"comment": {"body": ""}},
        headers=auth(anna),
    )

    assert response.status_code == 422
    assert response.get_json() == {"errors": {"body": ["can't be blank"]}}


def test_comment_on_unknown_article_is_404(client, anna):
    response = client.post(
        "/api/articles/nope/comments", json={"comment": {"body": "x"}}, headers=auth(anna)
    )

    assert response.status_code == 404


def test_comment_requires_a_token(client, article):
    response = client.post(
        f"/api/articles/{article['slug']}/comments", json={"comment": {"body": "x"}}
    )

    assert response.status_code == 401


def test_list_comments_newest_first(client, article, anna):
    first = add_comment(client, anna, article["slug"], "first")
    second = add_comment(client, anna, article["slug"], "second")

    response = client.get(f"/api/articles/{article['slug']}/comments")

    assert response.status_code == 200
    assert [c["id"] for c in response.get_json()["comments"]] == [second["id"], first["id"]]


def test_list_comments_shows_following_for_the_viewer(client, article, jake, anna):
    add_comment(client, anna, article["slug"])
    follow(client, jake, "anna")

    as_jake = client.get(f"/api/articles/{article['slug']}/comments", headers=auth(jake))
    anonymous = client.get(f"/api/articles/{article['slug']}/comments")

    assert as_jake.get_json()["comments"][0]["author"]["following"] is True
    assert anonymous.get_json()["comments"][0]["author"]["following"] is False


def test_list_comments_only_of_that_article(client, article, jake, anna):
    other = create_article(client, jake)
    add_comment(client, anna, other["slug"])

    response = client.get(f"/api/articles/{article['slug']}/comments")

    assert response.get_json() == {"comments": []}


def test_list_comments_of_unknown_article_is_404(client):
    assert client.get("/api/articles/nope/comments").status_code == 404


def test_delete_own_comment_returns_204(client, article, anna):
    comment = add_comment(client, anna, article["slug"])

    response = client.delete(
        f"/api/articles/{article['slug']}/comments/{comment['id']}", headers=auth(anna)
    )

    assert response.status_code == 204
    assert client.get(f"/api/articles/{article['slug']}/comments").get_json() == {"comments": []}


def test_non_author_gets_403_on_comment_delete(client, article, jake, anna):
    comment = add_comment(client, anna, article["slug"])

    response = client.delete(
        f"/api/articles/{article['slug']}/comments/{comment['id']}", headers=auth(jake)
    )

    assert response.status_code == 403
    assert response.get_json() == {"errors": {"comment": ["is not yours"]}}


@pytest.mark.parametrize("comment_id", ["999", "99999999999999999999999"])
def test_delete_unknown_comment_is_404(client, article, anna, comment_id):
    response = client.delete(
        f"/api/articles/{article['slug']}/comments/{comment_id}", headers=auth(anna)
    )

    assert response.status_code == 404
    assert response.get_json() == {"errors": {"comment": ["not found"]}}


def test_delete_comment_through_another_article_is_404(client, article, jake, anna):
    comment = add_comment(client, anna, article["slug"])
    other = create_article(client, jake)

    response = client.delete(
        f"/api/articles/{other['slug']}/comments/{comment['id']}", headers=auth(anna)
    )

    assert response.status_code == 404


def test_delete_comment_requires_a_token(client, article, anna):
    comment = add_comment(client, anna, article["slug"])

    response = client.delete(f"/api/articles/{article['slug']}/comments/{comment['id']}")

    assert response.status_code == 401


def test_a_comment_id_in_other_digits_matches_no_comment(client, article, anna):
    comment = add_comment(client, anna, article["slug"])
    arabic_indic = str(comment["id"]).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))

    response = client.delete(
        f"/api/articles/{article['slug']}/comments/{arabic_indic}", headers=auth(anna)
    )

    assert response.status_code == 404
    listed = client.get(f"/api/articles/{article['slug']}/comments").get_json()["comments"]
    assert [c["id"] for c in listed] == [comment["id"]]
