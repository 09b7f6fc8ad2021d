"""The generated document keeps every promise of the reference Conduit spec.

The project may add paths, responses and properties; it may not remove or
change what the reference (the RealWorld project's ``api/openapi.yml``, found in
``REALWORLD_API_DIR``, default ``../shared/conduit``) declares. Without it these
tests skip and say where it comes from, except with ``CI=true``, where that is a
failure.
"""

import pytest
import yaml

from tests.contract.operations import operations
from tests.environment import IN_CI, realworld_api_file

API_PREFIX = "/api"


@pytest.fixture(scope="module")
def reference():
    path, missing = realworld_api_file("openapi.yml")
    if missing:
        if IN_CI:
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def resolve(document, node):
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def success_code(responses):
    return next(code for code in responses if code.startswith("2"))


def response_schema(document, response):
    response = resolve(document, response)
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    return resolve(document, schema) if schema else None


def types_of(schema):
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind}


def assert_compatible(reference_doc, ours_doc, expected, actual, where):
    """Every property the reference requires is present, required, and of a compatible type."""
    expected = resolve(reference_doc, expected)
    actual = resolve(ours_doc, actual)
    assert types_of(expected) <= types_of(actual), f"{where}: type {actual.get('type')}"
    if "object" in types_of(expected):
        for name in expected.get("required", []):
            assert name in actual.get("properties", {}), f"{where}.{name} is missing"
            assert name in actual.get("required", []), f"{where}.{name} is not required"
            assert_compatible(
                reference_doc,
                ours_doc,
                expected["properties"][name],
                actual["properties"][name],
                f"{where}.{name}",
            )
    if "array" in types_of(expected):
        assert_compatible(reference_doc, ours_doc, expected["items"], actual["items"], f"{where}[]")


def reference_operations(reference):
    for path, method, operation in operations(reference):
        yield API_PREFIX + path, method, operation


def test_every_reference_operation_exists_with_the_same_id_and_status(reference, spec):
    for path, method, expected in reference_operations(reference):
        actual = spec["paths"].get(path, {}).get(method)
        assert actual is not None, f"{method.upper()} {path} is missing"
        assert actual["operationId"] == expected["operationId"]
        assert success_code(actual["responses"]) == success_code(expected["responses"]), (
            f"{method.upper()} {path}"
        )


def test_success_responses_have_every_reference_property(reference, spec):
    for path, method, expected in reference_operations(reference):
        actual = spec["paths"][path][method]
        code = success_code(expected["responses"])
        expected_schema = response_schema(reference, expected["responses"][code])
        if expected_schema is None:
            continue
        actual_schema = response_schema(spec, actual["responses"][code])
        assert_compatible(reference, spec, expected_schema, actual_schema, expected["operationId"])


def test_request_bodies_require_nothing_the_reference_leaves_optional(reference, spec):
    for path, method, expected in reference_operations(reference):
        if "requestBody" not in expected:
            continue
        expected_body = resolve(reference, expected["requestBody"])
        actual_body = spec["paths"][path][method]["requestBody"]
        expected_schema = resolve(reference, expected_body["content"]["application/json"]["schema"])
        actual_schema = resolve(spec, actual_body["content"]["application/json"]["schema"])
        (envelope,) = expected_schema["properties"]
        inner_expected = resolve(reference, expected_schema["properties"][envelope])
        inner_actual = resolve(spec, actual_schema["properties"][envelope])
        assert set(inner_actual.get("required", [])) <= set(inner_expected.get("required", [])), (
            expected["operationId"]
        )
        assert set(inner_expected["properties"]) <= set(inner_actual["properties"])
