"""schemathesis against the OpenAPI document over real HTTP: no 5xx, and every response matches the schema
(status code, content type, body, documented headers). Bounded: a few examples per operation."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.api.conftest import ADMIN_HEADERS, ServedApp, Tenant

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def api_schema(served: ServedApp) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_its_schema(
    case: schemathesis.Case, served: ServedApp, tenant: Tenant, aws_endpoint: str
) -> None:
    # aws_endpoint: POST /v1/media presigns with credentials, which must not depend on an earlier test setting them
    headers = ADMIN_HEADERS if case.path.startswith("/v1/admin/") else tenant.headers
    case.call_and_validate(base_url=served.url, headers=headers, checks=CHECKS)
