"""The built web app is served beside the API; without a build, / says how to get one."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.web import webapp
from tests.apps import make_app

INDEX = "<!doctype html><title>Conduit</title><div id=root></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX, encoding="utf-8")
    (tmp_path / "assets" / "index-3f2a1b.js").write_text("console.log(1)", encoding="utf-8")
    (tmp_path / "favicon.svg").write_text("<svg/>", encoding="utf-8")
    return tmp_path


def _client(frontend_dist: Path) -> FlaskClient:
    return make_app("sqlite://", FRONTEND_DIST=str(frontend_dist)).test_client()


@pytest.fixture
def client(dist: Path) -> FlaskClient:
    return _client(dist)


def fetch(client: FlaskClient, path: str, method: str = "get") -> TestResponse:
    """The response, read and closed (files are streamed from disk)."""
    with getattr(client, method)(path) as response:
        response.get_data()
        return response


def test_home_is_the_apps_index_never_cached_stale(client: FlaskClient) -> None:
    response = fetch(client, "/")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == INDEX
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/article/how-to-train-your-dragon", "/profile/ann/favorites", "/editor", "/login"]
)
def test_client_side_routes_load_the_index(client: FlaskClient, path: str) -> None:
    response = fetch(client, path)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == INDEX


def test_hashed_assets_are_cached_for_a_year(client: FlaskClient) -> None:
    response = fetch(client, "/assets/index-3f2a1b.js")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "console.log(1)"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_other_files_are_served_revalidated(client: FlaskClient) -> None:
    response = fetch(client, "/favicon.svg")
    assert response.status_code == 200
    assert "max-age=0" in response.headers["Cache-Control"]


def test_a_missing_file_is_404_not_the_index(client: FlaskClient) -> None:
    response = fetch(client, "/assets/index-old.js")
    assert response.status_code == 404
    assert response.get_json() == {"errors": {"body": ["not found"]}}


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
@pytest.mark.parametrize("path", ["/api/nope", "/api", "/api/articles/x/nope", "/docs/nope"])
def test_unknown_api_and_docs_paths_stay_404_in_the_envelope(
    client: FlaskClient, method: str, path: str
) -> None:
    response = fetch(client, path, method)
    assert response.status_code == 404
    assert response.get_json() == {"errors": {"body": ["not found"]}}


def test_the_api_and_docs_are_still_served(client: FlaskClient) -> None:
    assert fetch(client, "/api/tags").status_code != 404
    assert fetch(client, "/docs").status_code == 200
    assert fetch(client, "/openapi.json").status_code == 200


def test_without_a_build_home_says_how_to_get_the_app(tmp_path: Path) -> None:
    client = _client(tmp_path / "missing")
    response = fetch(client, "/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "make run" in page
    assert "Node.js 20" in page
    assert 'href="/docs"' in page
    assert fetch(client, "/article/x").status_code == 404
    assert fetch(client, "/api/nope").get_json() == {"errors": {"body": ["not found"]}}


def test_the_built_web_app_is_looked_for_in_the_projects_frontend_folder():
    project = Path(__file__).resolve().parent.parent

    assert project / "frontend" / "dist" == webapp.DEFAULT_DIST
