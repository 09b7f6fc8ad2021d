"""The alert rules and the dashboard in deploy/ parse, and name only metrics the app exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from app.web import metrics
from tests.apps import app_with_tables
from tests.factories import create_article, register

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "conduit.json"
METRIC_NAME = re.compile(r"\bconduit_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@pytest.fixture(scope="module")
def exported_names(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every series name the app exports, once each kind of event has happened."""
    directory = tmp_path_factory.mktemp("metrics")
    url = f"sqlite:///{directory / 'conduit.db'}"
    with app_with_tables(url, METRICS_PORT="9464", METRICS_DIRECTORY=str(directory)) as app:
        _exercise(app)
        families = text_string_to_metric_families(metrics.exposition(app).decode())
        yield {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def _exercise(app: Flask) -> None:
    client = app.test_client()
    create_article(client, register(client))
    client.get("/api/articles")
    assert app.test_cli_runner().invoke(args=["counters", "verify"]).exit_code == 0


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_alert_rules_are_an_error_rate_and_a_p99_latency() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}

    assert set(rules) == {"ConduitHighErrorRate", "ConduitSlowRequests"}
    assert 'status=~"5.."' in rules["ConduitHighErrorRate"]["expr"]
    assert "histogram_quantile(0.99" in rules["ConduitSlowRequests"]["expr"]
    assert all(rule["for"] and rule["labels"]["severity"] for rule in rules.values())


def test_the_alert_rules_name_only_exported_metrics(exported_names: set[str]) -> None:
    named = {name for rule in alert_rules() for name in METRIC_NAME.findall(rule["expr"])}

    assert named
    assert named - exported_names == set()


def test_the_dashboard_names_only_exported_metrics(exported_names: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]

    named = {name for expression in expressions for name in METRIC_NAME.findall(expression)}
    assert named - exported_names == set()


def test_the_dashboard_graphs_every_exported_metric(exported_names: set[str]) -> None:
    text = DASHBOARD.read_text()
    graphed = set(METRIC_NAME.findall(text))

    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in exported_names}
    assert {
        family for family in families if not any(name.startswith(family) for name in graphed)
    } == set()
