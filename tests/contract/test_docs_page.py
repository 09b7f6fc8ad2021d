"""The interactive docs at /docs render in a real browser from the app's own files.

The app is served on a loopback port (gunicorn on a throwaway SQLite database);
headless Chromium (Debian's ``chromium``, ``make browser``) loads /docs and
dumps the DOM after Swagger UI has rendered, while Chromium's net log records
every request and its log the page's console. Any host other than 127.0.0.1
resolves to nothing, so even Chromium's own background requests cannot leave
the machine. The page renders under its Content-Security-Policy
(app/web/security_headers.py) without breaking a rule of it.

Skips when chromium is missing, unless CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.web.openapi import openapi_document
from scripts import throwaway
from tests.apps import TEST_SECRET_KEY, make_app
from tests.contract.operations import operations
from tests.databases import IN_CI

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-pings",
    "--disable-domain-reliability",
    # Nothing but loopback resolves: no request can reach another host.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=10000",
    # The page's console on stderr (INFO:CONSOLE lines), CSP violations included.
    "--enable-logging=stderr",
    "--log-level=0",
]


@dataclass(frozen=True)
class RenderedPage:
    origin: str
    dom: str  # after Swagger UI ran
    page_requests: list[str]  # URLs the page asked for
    connections: list[str]  # every address Chromium opened a TCP connection to
    console: list[str]  # the page's console messages


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "chromium is not installed: run `make browser` (apt-get install chromium)"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app, served on a free loopback port for the duration of the module."""
    with throwaway.environment(
        "sqlite",
        settings={"APP_ENV": "testing", "SECRET_KEY": TEST_SECRET_KEY},
        workdir=tmp_path_factory.mktemp("docs"),
    ) as served:
        yield served.base_url


def _net_log(path: Path) -> tuple[list[str], list[str]]:
    """The URLs Chromium requested and the addresses it connected to."""
    log = json.loads(path.read_text(encoding="utf-8"))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    urls: list[str] = []
    connections: list[str] = []
    for event in log["events"]:
        params = event.get("params") or {}
        name = names[event["type"]]
        if name == "URL_REQUEST_START_JOB" and "url" in params:
            urls.append(params["url"])
        elif name == "TCP_CONNECT" and "remote_address" in params:
            connections.append(params["remote_address"])
    return urls, connections


@pytest.fixture(scope="module")
def page(chromium: str, origin: str, tmp_path_factory: pytest.TempPathFactory) -> RenderedPage:
    scratch = tmp_path_factory.mktemp("chromium")
    net_log = scratch / "net-log.json"
    result = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={scratch / 'profile'}",
            f"--log-net-log={net_log}",
            "--dump-dom",
            f"{origin}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    urls, connections = _net_log(net_log)
    page_requests = [url for url in urls if url.startswith(origin)]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return RenderedPage(origin, result.stdout, page_requests, connections, console)


def test_docs_page_references_only_the_apps_own_urls() -> None:
    html = make_app("sqlite://").test_client().get("/docs").get_data(as_text=True)
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert references, html
    assert all(url.startswith("/") and not url.startswith("//") for url in references), references
    assert 'data-spec-url="/openapi.json"' in html


def test_docs_list_every_operation(page: RenderedPage) -> None:
    assert "List articles" in page.dom
    assert "/api/articles/{slug}" in page.dom
    rendered = set(re.findall(r'id="operations-[^"-]+-(\w+)"', page.dom))
    expected = {operation["operationId"] for _, _, operation in operations(openapi_document())}
    assert expected <= rendered, f"not rendered: {sorted(expected - rendered)}"


def test_docs_load_their_assets_and_the_live_spec_from_the_app(page: RenderedPage) -> None:
    paths = {urlsplit(url).path for url in page.page_requests}
    assert {
        "/docs",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui-standalone-preset.js",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/swagger-initializer.js",
        "/openapi.json",
    } <= paths


def test_docs_render_within_their_content_security_policy(page: RenderedPage) -> None:
    assert [line for line in page.console if "Content Security Policy" in line] == []


def test_docs_reach_no_host_but_the_app(page: RenderedPage) -> None:
    port = urlsplit(page.origin).port
    assert page.connections, "the net log recorded no connection"
    assert set(page.connections) == {f"127.0.0.1:{port}"}
