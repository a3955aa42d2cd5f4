"""Property-based requests generated from the OpenAPI document find no server error (schemathesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from sharehub.access.consumers import add_consumer
from sharehub.demo.build import build_sources
from sharehub.pipeline.run import run_resource

pytestmark = pytest.mark.slow  # property-based requests to every route, as three roles

KEYS: dict[str, str] = {}


@pytest.fixture
def api_schema(make_hub, use_env):
    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 60, 20)
    run_resource(hub, "gongan.population")
    use_env(hub)
    app = create_app()
    KEYS["consumer"] = add_consumer(hub, "schemathesis", "rsj", "consumer")[1]
    KEYS["platform"] = add_consumer(hub, "平台", "platform", "platform")[1]
    KEYS["provider"] = add_consumer(hub, "公安局", "gongan", "provider")[1]
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    TestClient(app).post(
        "/applications",
        json={
            "resource_id": "gongan.population",
            "fields": ["id_number", "name", "sex", "birth_date"],
            "modes": ["verification", "query", "bulk"],
            "purpose": "接口健壮性测试",
            "valid_until": until,
        },
        headers={"Authorization": f"Bearer {KEYS['consumer']}"},
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.content_type_conformance,
]


def _run(schema, role: str, examples: int) -> int:
    """Drive every operation with generated requests as this role, checking that no answer is a server
    error and that every status and body is the one the document declares; return how many operations ran.
    Every failure is collected, so one run names every operation that breaks its contract."""
    operations, failures = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def drive(case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {KEYS[role]}"}, checks=CHECKS)

        try:
            drive()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 -- gathered; the test fails on them below
            said = " ".join(line.strip() for line in str(exc).splitlines()[:12] if line.strip())
            failures.append(f"{operation.method.upper()} {operation.path}: {said}")
        operations += 1
    assert not failures, "\n".join(failures)
    return operations


def test_no_server_error_as_a_consumer(api_schema) -> None:
    assert _run(api_schema, "consumer", 15) >= 20


def test_no_server_error_as_the_platform(api_schema) -> None:
    assert _run(api_schema, "platform", 8) >= 20


def test_no_server_error_as_a_provider(api_schema) -> None:
    assert _run(api_schema, "provider", 8) >= 20
