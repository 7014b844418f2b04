"""Schemathesis over the served OpenAPI document: generated requests (valid and invalid)
against every documented operation. No 5xx, every response matches the schema, and every
error has the one JSON shape of api.md.

The app is the real one on SQLite with no worker in this process (tasks stay queued), so
the run is bounded and repeatable; ``REELSERVE_FUZZ_EXAMPLES`` raises the case count.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.api.conftest import Service, ServiceFactory

EXAMPLES = int(os.environ.get("REELSERVE_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def fuzzed(make_service: ServiceFactory) -> Service:
    # Limits off: the fuzzer creates far more tasks per minute than a person would.
    return make_service(worker=False, creates_per_minute=0, max_active_per_key=0, credits=10**9)


def one_error_shape(ctx: CheckContext, response: Response, case: Any) -> bool | None:
    """Every 4xx/5xx answers ``{"error", "code", "message"}`` with error == code."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict), f"error body is not an object: {response.text[:200]}"
    missing = {"error", "code", "message"} - set(body)
    assert not missing, f"error body lacks {sorted(missing)}: {body}"
    assert body["error"] == body["code"], body
    assert body["message"], body
    return True


CHECKS = [not_a_server_error, response_schema_conformance, one_error_shape]


def test_every_operation_keeps_the_contract(fuzzed: Service) -> None:
    # Driven from inside one test (not ``schema.parametrize``) because the schema comes from
    # a per-test app; each operation gets its own bounded Hypothesis run.
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzzed.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    tried = []
    for operation in operations:
        if operation.path in ("/metrics",):
            continue  # Prometheus text, not JSON

        # Valid requests and requests that break the schema on purpose, each bounded.
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            response = case.call(headers=fuzzed.auth)
            case.validate_response(response, checks=CHECKS)

        run()
        tried.append(f"{operation.method.upper()} {operation.path}")
    # The document must expose the contract's routes, or the run above proved little.
    assert "POST /api/v1/generation/kling-ai/kling-v2.6" in tried, tried
    assert "POST /api/v1/generation/kling-ai/motion-control-v2.6" in tried, tried
    assert "GET /api/v1/generation/{generation_id}" in tried, tried
    assert len(tried) >= 8, tried
