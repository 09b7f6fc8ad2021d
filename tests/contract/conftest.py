"""The generated OpenAPI document, built once for the contract tests."""

import pytest

from app.web.openapi import openapi_document


@pytest.fixture(scope="session")
def spec():
    return openapi_document()


def operations(spec):
    """(path, method, operation) for every operation in the document."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch"}:
                yield path, method, operation
