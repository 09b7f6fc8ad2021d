"""Each statement the API runs is compiled once, then found in SQLAlchemy's compiled cache;
each marshmallow schema it reads or writes with is built once.

A statement built around a request's values (``insert().values(rows)``, a
literal in a clause) has no cache key, so it is compiled again with every
request: on the write path that costs more CPU than running it
(docs/performance.md, "Statements compiled once"). Savepoints and
``exec_driver_sql`` text (the change feed's ``NOTIFY``) are not compiled
from a construct and are left out. The test apps fold the running totals
after every write that moves them, in the request: each round's folds take
a different number of tags.
"""

from __future__ import annotations

from typing import Any

import marshmallow
import pytest

from app.extensions import db
from tests.databases import compiled_anew
from tests.factories import PASSWORD, auth, create_article, register


def every_request(client: Any, round_: int, new_tags: int) -> None:
    """One of each of the API's requests, with this round's own values and ``new_tags`` new tags."""
    writer = register(client)
    reader = register(client)
    tags = [f"round{round_}-{n}" for n in range(new_tags)] + ["shared"]
    article = create_article(client, writer, tagList=tags)
    slug = article["slug"]
    calls = [
        (
            "POST",
            "/api/users/login",
            None,
            {"user": {"email": reader["email"], "password": PASSWORD}},
        ),
        ("GET", "/api/user", reader, None),
        ("PUT", "/api/user", reader, {"user": {"bio": f"Bio {round_}", "image": None}}),
        ("GET", f"/api/profiles/{writer['username']}", reader, None),
        ("POST", f"/api/profiles/{writer['username']}/follow", reader, None),
        ("GET", "/api/articles/feed", reader, None),
        ("DELETE", f"/api/profiles/{writer['username']}/follow", reader, None),
        ("POST", f"/api/articles/{slug}/favorite", reader, None),
        ("GET", f"/api/articles?favorited={reader['username']}", None, None),
        ("DELETE", f"/api/articles/{slug}/favorite", reader, None),
        ("GET", "/api/articles", reader, None),
        ("GET", "/api/articles?tag=shared&limit=5&offset=1", None, None),
        ("GET", f"/api/articles?author={writer['username']}", None, None),
        ("GET", f"/api/articles/{slug}", None, None),
        ("GET", "/api/tags", None, None),
        ("GET", f"/api/articles/{slug}/comments", reader, None),
    ]
    for method, path, user, body in calls:
        response = client.open(path, method=method, json=body, headers=auth(user) if user else {})
        assert response.status_code == 200, (path, response.get_json())
    comment = client.post(
        f"/api/articles/{slug}/comments",
        json={"comment": {"body": f"Comment {round_}"}},
        headers=auth(reader),
    ).get_json()["comment"]
    retagged = [f"again{round_}-{n}" for n in range(new_tags)]
    for method, path, user, body, status in [
        ("DELETE", f"/api/articles/{slug}/comments/{comment['id']}", reader, None, 204),
        ("PUT", f"/api/articles/{slug}", writer, {"article": {"tagList": retagged}}, 200),
        ("DELETE", f"/api/articles/{slug}", writer, None, 204),
    ]:
        response = client.open(path, method=method, json=body, headers=auth(user))
        assert response.status_code == status, (path, response.get_json())


def test_repeating_every_request_compiles_no_statement_again(app):
    client = app.test_client()
    for round_, new_tags in enumerate((2, 3)):  # every shape once, with its own values
        every_request(client, round_, new_tags)
    with compiled_anew(app) as compiled:
        for round_, new_tags in enumerate((3, 2), start=2):
            every_request(client, round_, new_tags)
    assert compiled == []


def schemas_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the marshmallow schemas built from now on (a list the caller reads later)."""
    built: list[str] = []
    original = marshmallow.Schema.__init__

    def counting(schema: marshmallow.Schema, *args: Any, **kwargs: Any) -> None:
        built.append(type(schema).__name__)
        original(schema, *args, **kwargs)

    monkeypatch.setattr(marshmallow.Schema, "__init__", counting)
    return built


def test_repeating_every_request_builds_no_schema_again(app, monkeypatch):
    """A schema passed to ``@blp.arguments`` as a class is built by webargs for every request
    (its ``__init__`` copies every declared field): the routes pass instances."""
    client = app.test_client()
    every_request(client, 0, 2)
    built = schemas_built(monkeypatch)
    every_request(client, 1, 2)
    assert built == []


def test_the_schema_count_sees_a_schema_built_per_request(app, monkeypatch):
    from app.comments.schemas import NewCommentRequestSchema

    built = schemas_built(monkeypatch)
    NewCommentRequestSchema()
    assert built == ["NewCommentRequestSchema"]


def test_the_check_sees_a_statement_built_from_a_requests_values(app):
    from sqlalchemy import insert

    from app.models import Tag

    with compiled_anew(app) as compiled, app.app_context():
        for n in range(2):
            db.session.execute(insert(Tag).values([{"name": f"built{n}"}]))
        db.session.rollback()
    assert len(compiled) == 2
    assert all(line.startswith("NO_CACHE_KEY: INSERT INTO tags") for line in compiled)
