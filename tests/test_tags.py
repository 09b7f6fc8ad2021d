"""The tags in use."""

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
