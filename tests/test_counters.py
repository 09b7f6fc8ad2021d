"""Running totals stay equal to the rows they count, whatever the writes."""

from app import counters
from app.extensions import db
from tests.factories import auth, create_article, register


def totals(client):
    return {
        "all": client.get("/api/articles").get_json()["articlesCount"],
        "a": client.get("/api/articles?tag=a").get_json()["articlesCount"],
        "b": client.get("/api/articles?tag=b").get_json()["articlesCount"],
        "tags": client.get("/api/tags").get_json()["tags"],
    }


def test_totals_follow_creates_retags_and_deletes(client):
    jake = register(client)
    first = create_article(client, jake, tagList=["a", "b"])
    second = create_article(client, jake, tagList=["a"])
    create_article(client, jake)

    assert totals(client) == {"all": 3, "a": 2, "b": 1, "tags": ["a", "b"]}

    client.put(
        f"/api/articles/{second['slug']}", json={"article": {"tagList": ["b"]}}, headers=auth(jake)
    )
    assert totals(client) == {"all": 3, "a": 1, "b": 2, "tags": ["b", "a"]}

    client.delete(f"/api/articles/{first['slug']}", headers=auth(jake))
    assert totals(client) == {"all": 2, "a": 0, "b": 1, "tags": ["b"]}


def test_a_rejected_write_changes_no_total(client):
    jake = register(client)
    article = create_article(client, jake, tagList=["a"])

    response = client.put(
        f"/api/articles/{article['slug']}",
        json={"article": {"tagList": ["b", ""]}},
        headers=auth(jake),
    )

    assert response.status_code == 422
    assert totals(client) == {"all": 1, "a": 1, "b": 0, "tags": ["a"]}


def test_recount_rebuilds_totals_from_the_rows(app, client):
    jake = register(client)
    create_article(client, jake, tagList=["a", "b"])
    create_article(client, jake, tagList=["a"])
    sql_statements = ["UPDATE tags SET article_count = 99", "UPDATE counters SET value = 42"]
    with app.app_context():
        for statement in sql_statements:
            db.session.execute(db.text(statement))
        counters.recount()
        db.session.commit()

    assert totals(client) == {"all": 2, "a": 2, "b": 1, "tags": ["a", "b"]}
