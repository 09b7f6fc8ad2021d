"""CORS: preflights answered for the allowed origins (``CORS_ORIGINS``)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from app.extensions import db
from tests.apps import make_app

ALLOWED = "https://app.example"
OTHER_ALLOWED = "https://admin.example"
DISALLOWED = "https://evil.example"


def _client(tmp_path, monkeypatch: pytest.MonkeyPatch, origins: str) -> FlaskClient:
    monkeypatch.setenv("CORS_ORIGINS", origins)
    return make_app(f"sqlite:///{tmp_path / 'cors.db'}").test_client()


def _preflight(client: FlaskClient, origin: str, path: str = "/api/articles"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )


@pytest.mark.parametrize("origin", [ALLOWED, OTHER_ALLOWED])
def test_preflight_from_an_allowed_origin_is_answered(tmp_path, monkeypatch, origin) -> None:
    client = _client(tmp_path, monkeypatch, f"{ALLOWED}, {OTHER_ALLOWED}")
    response = _preflight(client, origin)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Origin" in response.headers["Vary"]


def test_preflight_from_another_origin_gets_no_cors_headers(tmp_path, monkeypatch) -> None:
    client = _client(tmp_path, monkeypatch, f"{ALLOWED},{OTHER_ALLOWED}")
    response = _preflight(client, DISALLOWED)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Headers" not in response.headers


def test_any_origin_is_allowed_by_default(tmp_path, monkeypatch) -> None:
    client = _client(tmp_path, monkeypatch, "*")
    response = _preflight(client, DISALLOWED, "/api/articles/some-slug/comments")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", DISALLOWED)
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


def test_actual_response_carries_the_origin_and_exposes_the_request_id(
    tmp_path, monkeypatch
) -> None:
    client = _client(tmp_path, monkeypatch, ALLOWED)
    response = client.get("/api/tags", headers={"Origin": ALLOWED})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "x-request-id" in response.headers["Access-Control-Expose-Headers"].lower()


def test_routes_outside_the_api_send_no_cors_headers(tmp_path, monkeypatch) -> None:
    client = _client(tmp_path, monkeypatch, ALLOWED)
    response = client.get("/healthz", headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_preflight_allows_the_conditional_request_headers(tmp_path, monkeypatch) -> None:
    client = _client(tmp_path, monkeypatch, ALLOWED)

    response = client.options(
        "/api/articles/some-slug",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "Authorization, If-Match, If-None-Match",
        },
    )

    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"if-match", "if-none-match"} <= {h.strip() for h in allowed_headers.split(",")}


def test_a_cross_origin_answer_exposes_its_validators(tmp_path, monkeypatch) -> None:
    client = _client(tmp_path, monkeypatch, ALLOWED)
    with client.application.app_context():
        db.create_all()

    response = client.get("/api/tags", headers={"Origin": ALLOWED})

    assert response.headers["ETag"]
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"etag", "retry-after"} <= exposed


def test_a_cross_origin_client_may_send_and_read_its_database_position(
    tmp_path, monkeypatch
) -> None:
    client = _client(tmp_path, monkeypatch, ALLOWED)
    with client.application.app_context():
        db.create_all()

    preflight = client.options(
        "/api/tags",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-Database-Position",
        },
    )
    answer = client.get("/api/tags", headers={"Origin": ALLOWED})

    allowed = {
        h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
    }
    exposed = {
        h.strip().lower() for h in answer.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert "x-database-position" in allowed
    assert "x-database-position" in exposed
