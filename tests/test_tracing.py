"""Traces: off by default and free when off; on, a request, its SQL and its cache look-up
are spans of one trace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app import close_app
from app.web import tracing
from tests.apps import app_with_tables, make_app
from tests.listening import wait_until_listening

ROOT = Path(__file__).resolve().parent.parent

# A request served with tracing and metrics off; prints the observability modules imported.
OFF = """
import sys
from tests.environment import seal
seal()
from app import create_app
from app.extensions import db
app = create_app({"APP_ENV": "testing", "SECRET_KEY": "k" * 40, "DATABASE_URL": sys.argv[1]})
with app.app_context():
    db.create_all()
assert app.test_client().get("/api/tags").status_code == 200
observing = ("opentelemetry", "prometheus_client")
print(sorted({name.split(".")[0] for name in sys.modules if name.startswith(observing)}))
"""


@pytest.mark.served  # a fresh interpreter
def test_with_tracing_and_metrics_off_neither_library_is_imported(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", OFF, f"sqlite:///{tmp_path / 'conduit.db'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == "[]"


def test_with_tracing_off_no_hook_is_installed(app: Flask) -> None:
    assert tracing.EXTENSION not in app.extensions
    hooks = app.before_request_funcs.get(None, [])
    assert not [hook for hook in hooks if "opentelemetry" in hook.__module__]


@pytest.mark.parametrize("exporter", ["otlp", "console"])
def test_an_exporter_named_by_otel_traces_exporter_turns_tracing_on(
    exporter: str, tmp_path: Path
) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'conduit.db'}", OTEL_TRACES_EXPORTER=exporter)
    try:
        assert tracing.EXTENSION in app.extensions
    finally:
        tracing.close(app)
        close_app(app)


@pytest.fixture
def exported(database_url: str) -> Iterator[tuple[Flask, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    with app_with_tables(database_url, **{tracing.EXPORTER_OVERRIDE: exporter}) as app:
        wait_until_listening(app)
        exporter.clear()  # the tables' creation: statements of no request
        try:
            yield app, exporter
        finally:
            tracing.close(app)


def test_a_request_its_statements_and_its_cache_look_up_are_spans_of_one_trace(
    exported: tuple[Flask, InMemorySpanExporter],
) -> None:
    app, exporter = exported

    assert app.test_client().get("/api/articles").headers["X-Cache"] == "miss"

    spans = exporter.get_finished_spans()
    (request_span,) = [span for span in spans if span.kind == SpanKind.SERVER]
    statements = [span for span in spans if span.kind == SpanKind.CLIENT]
    (look_up,) = [span for span in spans if span.name == tracing.CACHE_SPAN]
    assert request_span.name == "GET /api/articles"
    assert statements
    assert all(span.attributes and "db.statement" in span.attributes for span in statements)
    assert look_up.attributes == {"conduit.response_cache.hit": False}
    trace_id = request_span.context.trace_id
    assert {span.context.trace_id for span in spans} == {trace_id}
    assert look_up.parent is not None and look_up.parent.span_id == request_span.context.span_id


def test_a_cache_hit_is_a_request_span_with_a_hit_and_no_statement(
    exported: tuple[Flask, InMemorySpanExporter],
) -> None:
    app, exporter = exported
    client = app.test_client()
    client.get("/api/tags")
    exporter.clear()

    assert client.get("/api/tags").headers["X-Cache"] == "hit"

    spans = exporter.get_finished_spans()
    assert sorted(span.name for span in spans) == ["GET /api/tags", tracing.CACHE_SPAN]
    (look_up,) = [span for span in spans if span.name == tracing.CACHE_SPAN]
    assert look_up.attributes == {"conduit.response_cache.hit": True}
