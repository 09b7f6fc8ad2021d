"""Browser hardening headers on every answer, from the app and from nginx.

The web app's pages get its strict Content-Security-Policy, /docs its own, and
everything else (the API, its errors, cache hits, 304s, gunicorn's and nginx's
own refusals) a policy that allows nothing; HSTS only with ``HTTPS_ONLY=on``.
The nginx files in deploy/ must send what the app sends (app/web/security_headers.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.config import PROJECT_ROOT, ConfigurationError
from app.web.security_headers import (
    API_HEADERS,
    DOCS_HEADERS,
    HSTS,
    WEB_APP_HEADERS,
    WEB_APP_POLICY,
)
from tests.apps import make_app
from tests.factories import register
from tests.listening import wait_until_listening
from tests.serving import exchange, http_request, port_of

CSP = "Content-Security-Policy"
HARDENING = {name.lower() for name in API_HEADERS} | {HSTS[0].lower()}


def fetch(client: FlaskClient, path: str, **kwargs) -> TestResponse:
    """The response, read and closed (files are streamed from disk)."""
    with client.get(path, **kwargs) as response:
        response.get_data()
        return response


def hardening(response: TestResponse) -> dict[str, str]:
    """The hardening headers of an answer; each must be there once."""
    found = {}
    for name in {*API_HEADERS, HSTS[0]}:
        values = response.headers.getlist(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        if values:
            found[name] = values[0]
    return found


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parsed}


# --- the web app -------------------------------------------------------------------


@pytest.fixture
def webapp(tmp_path: Path) -> FlaskClient:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>", encoding="utf-8")
    (tmp_path / "assets" / "index-3f2a1b.js").write_text("console.log(1)", encoding="utf-8")
    (tmp_path / "favicon.svg").write_text("<svg/>", encoding="utf-8")
    return make_app("sqlite://", FRONTEND_DIST=str(tmp_path)).test_client()


def test_the_web_app_policy_allows_no_inline_script_no_eval_no_framing() -> None:
    policy = directives(WEB_APP_POLICY)

    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["img-src"] == ["'self'", "https:", "data:"]  # article images, avatars


@pytest.mark.parametrize(
    "path",
    ["/", "/article/how-to-train-your-dragon", "/assets/index-3f2a1b.js", "/favicon.svg"],
    ids=["home", "client route", "hashed asset", "other file"],
)
def test_the_web_app_is_served_with_its_policy(webapp: FlaskClient, path: str) -> None:
    response = fetch(webapp, path)

    assert response.status_code == 200
    assert hardening(response) == WEB_APP_HEADERS


def test_a_missing_web_app_file_has_the_headers_too(webapp: FlaskClient) -> None:
    response = fetch(webapp, "/assets/index-old.js")

    assert response.status_code == 404
    assert hardening(response) == WEB_APP_HEADERS


def test_the_page_without_a_build_has_the_web_app_policy(tmp_path: Path) -> None:
    client = make_app("sqlite://", FRONTEND_DIST=str(tmp_path / "none")).test_client()

    assert hardening(fetch(client, "/")) == WEB_APP_HEADERS


# --- the API -------------------------------------------------------------------------


def test_an_api_answer_forbids_everything(client: FlaskClient) -> None:
    response = client.get("/api/tags")

    assert response.status_code == 200
    assert hardening(response) == API_HEADERS
    assert API_HEADERS[CSP] == "default-src 'none'; frame-ancestors 'none'"
    assert API_HEADERS["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/api/nope", None, 404),
        ("get", "/api/articles/nobody-wrote-this", None, 404),
        ("post", "/api/users", "{not json", 400),
        ("post", "/api/users", '{"user": {}}', 422),
        ("get", "/api/user", None, 401),
        ("delete", "/api/tags", None, 405),
    ],
    ids=["no route", "no article", "bad json", "invalid", "no token", "wrong method"],
)
def test_an_api_error_has_the_headers(
    client: FlaskClient, method: str, path: str, body: str | None, status: int
) -> None:
    response = getattr(client, method)(path, data=body, content_type="application/json")

    assert response.status_code == status
    assert hardening(response) == API_HEADERS


def test_a_refused_request_has_the_headers(client: FlaskClient) -> None:
    response = client.get("/api/articles?tag=" + "x" * 9000)

    assert response.status_code == 414
    assert hardening(response) == API_HEADERS


def test_a_cached_answer_and_a_304_have_the_headers(app, client: FlaskClient) -> None:
    register(client)
    wait_until_listening(app)
    client.get("/api/articles")

    hit = client.get("/api/articles")
    not_modified = client.get("/api/articles", headers={"If-None-Match": hit.headers["ETag"]})

    assert hit.headers["X-Cache"] == "hit"
    assert hardening(hit) == API_HEADERS
    assert not_modified.status_code == 304
    assert hardening(not_modified) == API_HEADERS


@pytest.mark.parametrize(
    "path", ["/openapi.json", "/healthz", "/docs/assets/swagger-ui-bundle.js", "/api"]
)
def test_the_spec_the_probes_and_the_docs_assets_forbid_everything(path: str) -> None:
    response = fetch(make_app("sqlite://").test_client(), path)

    assert hardening(response) == API_HEADERS


def test_gunicorns_own_refusals_have_the_headers(served_module) -> None:
    port = port_of(served_module)
    answer = exchange(port, http_request("GET", "/api/tags", headers={"X-Big": "x" * 20_000}))

    assert answer.status == 431
    assert {name: value for name, value in answer.headers.items() if name in HARDENING} == {
        name.lower(): value for name, value in API_HEADERS.items()
    }


# --- /docs ---------------------------------------------------------------------------


def test_the_docs_page_has_its_own_policy_and_no_inline_script() -> None:
    response = fetch(make_app("sqlite://").test_client(), "/docs")
    page = response.get_data(as_text=True)

    assert hardening(response) == DOCS_HEADERS
    assert directives(DOCS_HEADERS[CSP])["script-src"] == ["'self'"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts, page
    assert all('src="/docs/assets/' in attributes and not body for attributes, body in scripts)
    assert not re.search(r"\son\w+=", page)


def test_the_docs_starter_is_served() -> None:
    response = fetch(make_app("sqlite://").test_client(), "/docs/assets/swagger-initializer.js")

    assert response.status_code == 200
    assert response.mimetype in {"text/javascript", "application/javascript"}
    assert "SwaggerUIBundle" in response.get_data(as_text=True)


# --- HSTS ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/nope", "/docs"])
def test_no_hsts_by_default(path: str) -> None:
    response = fetch(make_app("sqlite://").test_client(), path)

    assert HSTS[0] not in response.headers


@pytest.mark.parametrize("path", ["/", "/api/nope", "/docs"])
def test_https_only_sends_hsts_on_every_answer(path: str) -> None:
    response = fetch(make_app("sqlite://", HTTPS_ONLY="on").test_client(), path)

    assert response.headers.getlist(HSTS[0]) == ["max-age=31536000"]


def test_https_only_must_be_on_or_off() -> None:
    with pytest.raises(ConfigurationError, match="HTTPS_ONLY must be on or off"):
        make_app("sqlite://", HTTPS_ONLY="sometimes")


# --- nginx ---------------------------------------------------------------------------

NGINX_FILES = [PROJECT_ROOT / "deploy" / name for name in ("nginx.conf", "nginx-webapp.conf")]


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None


_TOKEN = re.compile(
    r"\s+|#[^\n]*"  # space, comments
    r"|'((?:\\.|[^'\\])*)'"  # a single-quoted string
    r'|"((?:\\.|[^"\\])*)"'  # a double-quoted string
    r"|([{};])|([^\s{};'\"#]+)"  # punctuation, words
)


def _tokens(text: str) -> Iterator[tuple[str, bool]]:
    """(token, is_punctuation) over nginx's syntax: words, quoted strings, ``{ } ;``."""
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match, f"cannot read nginx syntax at {text[position : position + 40]!r}"
        position = match.end()
        single, double, punctuation, word = match.groups()
        if punctuation:
            yield punctuation, True
        elif single is not None or double is not None:
            yield re.sub(r"\\(.)", r"\1", single if single is not None else double), False
        elif word:
            yield word, False


def parse_nginx(text: str) -> list[Directive]:
    root: list[Directive] = []
    stack = [root]
    words: list[str] = []
    for token, punctuation in _tokens(text):
        if not punctuation:
            words.append(token)
        elif token == ";":
            stack[-1].append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            directive = Directive(words[0], words[1:], block=[])
            stack[-1].append(directive)
            stack.append(directive.block)  # type: ignore[arg-type]
            words = []
        else:
            stack.pop()
    assert len(stack) == 1 and not words, "unbalanced braces"
    return root


def locations(directives: list[Directive]) -> Iterator[Directive]:
    for directive in directives:
        if directive.name == "location":
            yield directive
        if directive.block:
            yield from locations(directive.block)


def added_headers(location: Directive) -> dict[str, str]:
    """The hardening headers a location adds, each required to be ``always``."""
    found = {}
    for directive in location.block or []:
        if directive.name == "add_header" and directive.args[0].lower() in HARDENING:
            name, value, *flags = directive.args
            assert flags == ["always"], f"add_header {name} without always: 4xx/5xx would lack it"
            found[name] = value
    return found


def nginx_locations() -> list[tuple[str, Directive]]:
    return [
        (f"{path.name} location {' '.join(location.args)}", location)
        for path in NGINX_FILES
        for location in locations(parse_nginx(path.read_text(encoding="utf-8")))
    ]


def _kind(location: Directive) -> str:
    names = {directive.name for directive in location.block or []}
    if "proxy_pass" in names:
        return "proxied"
    if "return" in names:
        return "own answer"
    assert "try_files" in names, f"a location of unknown kind: {location.args}"
    return "file"


@pytest.mark.parametrize(
    ("where", "location"), nginx_locations(), ids=[where for where, _ in nginx_locations()]
)
def test_nginx_sends_the_apps_headers(where: str, location: Directive) -> None:
    expected = {"own answer": API_HEADERS, "file": WEB_APP_HEADERS, "proxied": {}}[_kind(location)]

    assert added_headers(location) == expected, where


def test_nginx_answers_and_serves_files_in_each_file() -> None:
    kinds = {(where.split()[0], _kind(location)) for where, location in nginx_locations()}

    assert {("nginx.conf", "own answer"), ("nginx-webapp.conf", "file")} <= kinds


def test_the_nginx_reader_reads_quotes_and_blocks() -> None:
    parsed = parse_nginx("""http { location = /x { add_header A "b 'c'; d" always; } }  # x""")

    (location,) = locations(parsed)
    assert location.args == ["=", "/x"]
    assert location.block == [Directive("add_header", ["A", "b 'c'; d", "always"])]
