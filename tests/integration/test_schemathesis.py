"""Property-based tests of the service against its own OpenAPI document (schemathesis), with
every check `schemathesis run --checks all` makes: no 5xx, only documented status codes,
content types and bodies as documented, schema-valid requests accepted, schema-violating
ones refused. Generated cases for every operation, positive and negative, then targeted
ones the generators rarely reach: bytes that are not UTF-8 under any Content-Type, and
dates at the ends of the calendar (both made 500s once)."""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, GenerationMode
from schemathesis.specs.openapi.schemas import OpenApiSchema

from pipelines.schema import DatetimeRange
from serving.main import create_app
from serving.settings import Settings
from tests.integration.test_serving_api import TX

pytestmark = pytest.mark.integration

# Examples per operation and mode: the whole file runs in about a minute on 2 busy cores.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
TARGETED = settings(FUZZ, max_examples=25)
POSTS = ("/v1/score", "/v1/score/batch", "/v1/labels")
MEDIA_TYPES = ("application/json", "text/plain", "application/octet-stream", "application/xml")


@pytest.fixture
def served(serving_settings: Callable[..., Settings]) -> Iterator[tuple[OpenApiSchema, Settings]]:
    """The app's OpenAPI document, its lifespan running (model loaded, store open)."""
    # No limit on how far ahead of the newest transaction a time may be: generated dates span
    # the whole configured range (the limit is tested in test_serving_api.py).
    config = serving_settings(**{"limits.max_ahead_days": None})
    app = create_app(config)
    with TestClient(app):
        yield schemathesis.openapi.from_asgi("/openapi.json", app), config


def test_generated_requests_get_the_documented_answers(
    served: tuple[OpenApiSchema, Settings],
) -> None:
    api, config = served
    for result in api.get_all_operations():
        operation = result.ok()
        _fuzz(operation, GenerationMode.POSITIVE, config.datetime_range)
        if operation.body:  # an operation without inputs has no invalid request
            _fuzz(operation, GenerationMode.NEGATIVE, config.datetime_range)


def _fuzz(operation: APIOperation, mode: GenerationMode, allowed: DatetimeRange) -> None:
    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        if mode is GenerationMode.POSITIVE:
            case.body = as_the_contract_reads(case.body, allowed)
        case.call_and_validate()

    check()


_ids = itertools.count(3 * 10**15)


def as_the_contract_reads(value: Any, allowed: DatetimeRange) -> Any:
    """A schema-valid body, made valid for the rules JSON Schema cannot state (the negative
    and targeted cases probe them): JSON Schema counts 1.0 as an integer, the contract does
    not (strict); it has no bounds for a date, the contract has the configured range. Without
    this, nearly no positive case would reach the scorer. Each transaction gets an id of its
    own: the same id with another payload is a 409, twice in one batch a 422."""
    if isinstance(value, dict):
        read = {
            k: _into(v, allowed) if k == "tx_datetime" else as_the_contract_reads(v, allowed)
            for k, v in value.items()
        }
        if "transaction_id" in read:
            read["transaction_id"] = next(_ids)
        return read
    if isinstance(value, list):
        return [as_the_contract_reads(v, allowed) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _into(text: str, allowed: DatetimeRange) -> str:
    """The same day of the year, time and offset, in a year of the range (a day inside its
    ends, whatever the offset)."""
    when = dt.datetime.fromisoformat(text)
    if when in allowed:
        return text
    year = allowed.low.year + 1
    while calendar.isleap(year) != calendar.isleap(when.year):  # 29 February stays a day
        year += 1
    moved = when.replace(year=year)
    assert moved in allowed, (text, moved)
    return moved.isoformat()


@pytest.mark.parametrize("path", POSTS)
def test_bytes_of_any_kind_are_a_4xx(served: tuple[OpenApiSchema, Settings], path: str) -> None:
    operation = served[0][path]["POST"]

    @TARGETED
    @given(body=st.binary(max_size=64), media_type=st.sampled_from(MEDIA_TYPES))
    @example(body=b'{"transaction_id": "\xff"}', media_type="text/plain")  # was a 500
    @example(body=b'{"transaction_id": "\xff"}', media_type="application/json")  # was a 400
    def check(body: bytes, media_type: str) -> None:
        response = operation.Case(body=body, media_type=media_type).call_and_validate()
        assert 400 <= response.status_code < 500, response.text

    check()


def _far_date(end: dt.datetime, seconds: int, offset_minutes: int | None) -> str:
    """A time `seconds` inside one end of the calendar, naive or at an offset."""
    inside = dt.timedelta(seconds=seconds)
    when = end + inside if end == dt.datetime.min else end - inside
    if offset_minutes is None:
        return when.isoformat()
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    return when.replace(tzinfo=zone).isoformat()


FAR_DATES = st.builds(
    _far_date,
    st.sampled_from([dt.datetime.min, dt.datetime.max]),
    st.integers(0, 2 * 86_400),
    st.none() | st.integers(-23 * 60 - 59, 23 * 60 + 59),
)


@pytest.mark.parametrize("path", POSTS[:2])
def test_dates_at_the_ends_of_the_calendar_are_a_422(
    served: tuple[OpenApiSchema, Settings], path: str
) -> None:
    operation = served[0][path]["POST"]

    @TARGETED
    @given(when=FAR_DATES)
    @example(when="0001-01-01T00:00:00+01:00")  # was a 500: converting it to UTC overflowed
    @example(when="9999-12-31T23:59:59-01:00")
    def check(when: str) -> None:
        tx = {**TX, "tx_datetime": when}
        body = {"transactions": [tx]} if path.endswith("batch") else tx
        response = operation.Case(body=body, media_type="application/json").call_and_validate()
        assert response.status_code == 422, response.text

    check()
