"""OpenTelemetry traces, when asked for: requests, SQL statements and cache look-ups.

Off unless ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``: OTLP over
HTTP/protobuf; ``console``: spans printed to stdout; unset or ``none``: off).
Off, nothing is imported from OpenTelemetry and nothing is hooked in: a
request costs exactly what it did without this module.

On, the official instrumentations make the spans: opentelemetry-instrumentation-flask
(one server span per request, named by its route template) and
opentelemetry-instrumentation-sqlalchemy (one client span per statement);
a span ``response_cache.get`` covers each look-up in the response cache,
with ``conduit.response_cache.hit``. Everything else comes from the standard
``OTEL_*`` variables, read from the environment or ``.env``:
``OTEL_SERVICE_NAME`` (default ``conduit``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_BSP_*`` (the batch processor),
``OTEL_PYTHON_FLASK_EXCLUDED_URLS``.

Spans are exported in batches from a thread of each worker process (the
batch processor restarts its thread after gunicorn forks).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from flask import Flask

from app.config import read_environment
from app.extensions import db

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

EXTENSION = "tracing"
# Tests (and embedders): an exporter object to use instead of OTEL_TRACES_EXPORTER's,
# with a synchronous processor, so spans are there as soon as the request ends.
EXPORTER_OVERRIDE = "TRACING_SPAN_EXPORTER"
DEFAULT_SERVICE_NAME = "conduit"
CACHE_SPAN = "response_cache.get"


def init_app(app: Flask) -> None:
    """Trace the app when ``OTEL_TRACES_EXPORTER`` (or the override) asks for it."""
    exporter_name = app.config.get("OTEL_TRACES_EXPORTER")
    override = app.config.get(EXPORTER_OVERRIDE)
    if exporter_name is None and override is None:
        return
    _export_otel_settings()
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = _provider()
    if override is not None:
        provider.add_span_processor(SimpleSpanProcessor(override))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter(str(exporter_name))))
    _trace_requests(app, provider)
    _trace_statements(app, provider)
    _trace_cache(app, provider)
    app.extensions[EXTENSION] = provider


def _export_otel_settings() -> None:
    """The ``OTEL_*`` variables a ``.env`` file sets, where the SDK reads them (the environment)."""
    for name, value in read_environment().items():
        if name.startswith("OTEL_") and value:
            os.environ.setdefault(name, str(value))


def _provider() -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return TracerProvider(resource=resource)  # OTEL_TRACES_SAMPLER: the SDK reads it


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT


def _trace_requests(app: Flask, provider: TracerProvider) -> None:
    """A server span per request, started before any other hook (a cache hit answers early)."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    hooks = app.before_request_funcs.setdefault(None, [])
    before = list(hooks)
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    added = [hook for hook in hooks if hook not in before]
    hooks[:] = added + before


def _trace_statements(app: Flask, provider: TracerProvider) -> None:
    """A client span per statement, from opentelemetry-instrumentation-sqlalchemy's engine
    listeners on this app's engine alone.

    Not ``SQLAlchemyInstrumentor().instrument(engine=…)``: that also patches
    ``create_engine`` and ``Engine.connect`` for the whole process, once (a
    second app is left untraced), and declares SQLAlchemy < 2.1, whose event
    API these listeners use unchanged (tests/test_tracing.py shows the spans).
    """
    from opentelemetry.instrumentation.sqlalchemy import __name__ as instrumentation
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    tracer = provider.get_tracer(instrumentation)
    # The instrumentation also counts connections in use; no meter provider is set, so
    # that is a no-op (the pool's metrics are Prometheus': app/web/metrics.py).
    usage = get_meter(instrumentation).create_up_down_counter("db.client.connections.usage")
    with app.app_context():
        EngineTracer(tracer, db.engine, usage)


def _trace_cache(app: Flask, provider: TracerProvider) -> None:
    """Wrap the response cache's look-up in a span (app/web/response_cache.py)."""
    cache = app.extensions.get("response_cache")
    if cache is None:
        return
    tracer = provider.get_tracer(__name__)
    look_up = cache.get

    def traced_get(key: Any) -> Any:
        with tracer.start_as_current_span(CACHE_SPAN) as span:
            entry = look_up(key)
            span.set_attribute("conduit.response_cache.hit", entry is not None)
            return entry

    cache.get = traced_get


def close(app: Flask) -> None:
    """Export what is left and stop (tests; a process that exits flushes by itself)."""
    provider = app.extensions.pop(EXTENSION, None)
    if provider is None:
        return
    provider.shutdown()
