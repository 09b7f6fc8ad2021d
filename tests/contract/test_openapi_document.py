"""The OpenAPI document is valid, complete, stable and committed."""

from pathlib import Path

import pytest
from openapi_spec_validator import validate

from app.web.openapi import render_openapi
from tests.contract.operations import operations

ROOT = Path(__file__).resolve().parents[2]
ERROR_CODES = {"401", "403", "404", "422", "503"}


def test_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_rendering_is_deterministic():
    assert render_openapi() == render_openapi()


def test_committed_openapi_json_is_current():
    committed = (ROOT / "openapi.json").read_text(encoding="utf-8")

    assert committed == render_openapi(), "openapi.json is stale: run `make openapi`"


def test_every_operation_has_id_summary_and_tags(spec):
    for path, method, operation in operations(spec):
        where = f"{method.upper()} {path}"
        assert operation.get("operationId"), where
        assert operation.get("summary"), where
        assert operation.get("tags"), where


def test_operation_ids_are_unique(spec):
    ids = [operation["operationId"] for _, _, operation in operations(spec)]

    assert len(ids) == len(set(ids))


def test_error_responses_use_the_error_schema(spec):
    responses = spec["components"]["responses"]
    for path, method, operation in operations(spec):
        for code, response in operation["responses"].items():
            if code in ERROR_CODES:
                name = response["$ref"].rsplit("/", 1)[-1]
                schema = responses[name]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (
                    f"{method.upper()} {path} {code}"
                )


def test_authenticated_operations_declare_token_security_and_401(spec):
    for path, method, operation in operations(spec):
        if "security" in operation:
            assert {"Token": []} in operation["security"], f"{method.upper()} {path}"
            assert "401" in operation["responses"], f"{method.upper()} {path}"


def test_operations_with_a_body_document_422(spec):
    for path, method, operation in operations(spec):
        if "requestBody" in operation:
            assert "422" in operation["responses"], f"{method.upper()} {path}"


def test_every_api_operation_documents_503_with_retry_after(spec):
    unavailable = spec["components"]["responses"]["SERVICE_UNAVAILABLE"]
    assert "Retry-After" in unavailable["headers"]
    for path, method, operation in operations(spec):
        if path.startswith("/api/"):
            assert operation["responses"].get("503") == {
                "$ref": "#/components/responses/SERVICE_UNAVAILABLE"
            }, f"{method.upper()} {path}"


def test_the_throttled_operations_document_429_with_retry_after(spec):
    throttled = spec["components"]["responses"]["TOO_MANY_REQUESTS"]
    assert throttled["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
    documented = {
        (method.upper(), path)
        for path, method, operation in operations(spec)
        if operation["responses"].get("429") == {"$ref": "#/components/responses/TOO_MANY_REQUESTS"}
    }

    assert documented == {("POST", "/api/users"), ("POST", "/api/users/login")}


def test_the_liveness_probe_documents_no_503(spec):
    assert "503" not in spec["paths"]["/healthz"]["get"]["responses"]


def _response_schema_names(spec):
    for _, _, operation in operations(spec):
        for response in operation["responses"].values():
            ref = (
                response.get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("$ref")
            )
            if ref:
                yield ref.rsplit("/", 1)[-1]


def _referenced(spec, name, seen=None):
    """Every component schema reachable from ``name``."""
    seen = set() if seen is None else seen
    if name in seen:
        return seen
    seen.add(name)
    text = str(spec["components"]["schemas"][name])
    for other in spec["components"]["schemas"]:
        if f"'#/components/schemas/{other}'" in text:
            _referenced(spec, other, seen)
    return seen


def test_request_and_response_schemas_are_separate_components(spec):
    request_roots = {
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for _, _, op in operations(spec)
        if "requestBody" in op
    }
    request_side = set().union(*(_referenced(spec, n) for n in request_roots))
    response_side = set().union(*(_referenced(spec, n) for n in _response_schema_names(spec)))

    assert request_side.isdisjoint(response_side)


@pytest.mark.parametrize(
    "name",
    ["User", "Profile", "Article", "ArticleListItem", "Comment", "MultipleArticlesResponse"],
)
def test_response_fields_are_all_required(spec, name):
    schema = spec["components"]["schemas"][name]

    assert set(schema["required"]) == set(schema["properties"])


def test_list_items_have_no_body(spec):
    assert "body" not in spec["components"]["schemas"]["ArticleListItem"]["properties"]
