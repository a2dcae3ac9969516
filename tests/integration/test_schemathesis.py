"""Property-based fuzzing of the service's own OpenAPI schema: no input makes it fail (5xx)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from serving.main import create_app
from serving.settings import Settings

pytestmark = pytest.mark.integration


def test_no_input_makes_the_service_fail(serving_settings: Callable[..., Settings]) -> None:
    app = create_app(serving_settings())
    with TestClient(app):  # runs the lifespan: model loaded, store open
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        failures: list[str] = []
        for operation in schema.get_all_operations():
            op = operation.ok()
            strategy = op.as_strategy()

            @settings(
                max_examples=60,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                response = case.call()
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.path}: {response.status_code} "
                        f"{response.text[:200]} for {case.body!r}"
                    )

            from hypothesis import given

            given(strategy)(check)()
        assert failures == []
