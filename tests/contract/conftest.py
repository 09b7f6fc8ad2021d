"""The generated OpenAPI document, built once for the contract tests.

Walking its operations: tests/contract/operations.py.
"""

import pytest

from app.web.openapi import openapi_document


@pytest.fixture(scope="session")
def spec():
    return openapi_document()
