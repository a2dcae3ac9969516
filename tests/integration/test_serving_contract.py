"""The online input contract is the offline one (pipelines/schema.py, the `validate` stage's
limits), with JSON's strict types; no body, however hostile, gets a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines import schema
from pipelines.validate import REASON, SOURCE_ROW, validate_transactions
from serving.main import create_app
from serving.settings import Settings
from tests.integration.test_serving_api import TX

pytestmark = pytest.mark.integration

RANGE = "from 2000-01-01T00:00:00 to 2100-01-01T00:00:00 UTC"  # configs/pipeline.yaml
JSON = {"content-type": "application/json"}
# Values outside the contract's ranges: refused online, quarantined offline.
OUT_OF_RANGE: list[dict[str, Any]] = [
    {"tx_datetime": "1999-12-31T00:00:00"},
    {"tx_datetime": "2100-01-02T00:00:00"},
    {"tx_datetime": "9999-12-31T00:00:00"},
    {"tx_datetime": "0001-01-01T00:00:00+01:00"},  # converting it to UTC overflowed (500)
    {"tx_datetime": "2000-01-01T00:30:00+01:00"},  # 1999-12-31T23:30 UTC
    {"tx_amount": -0.5},
    {"tx_amount": schema.MAX_AMOUNT},
    {"customer_id": -1},
    {"terminal_id": -3},
]
# At the ends of the ranges: accepted by both.
AT_THE_ENDS: list[dict[str, Any]] = [
    {"tx_datetime": "2000-01-01T00:00:00"},
    {"tx_datetime": "2100-01-01T00:00:00"},
    {"tx_datetime": "2100-01-01T01:00:00+01:00"},
    {"tx_amount": 0},
    {"tx_amount": 999_999_999_999.99},
    {"customer_id": 0},
]


@pytest.fixture
def client(serving_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(serving_settings()), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"tx_amount": True}, "tx_amount", "valid number"),
        ({"transaction_id": "123"}, "transaction_id", "valid integer"),
        ({"customer_id": 1.5}, "customer_id", "valid integer"),
        ({"terminal_id": 1.0}, "terminal_id", "valid integer"),
        ({"tx_datetime": 1526041805}, "tx_datetime", "ISO 8601"),
        ({"tx_datetime": "1999-12-31T00:00:00"}, "tx_datetime", RANGE),
        ({"tx_datetime": "2100-01-02T00:00:00"}, "tx_datetime", RANGE),
        ({"tx_datetime": "9999-12-31T00:00:00"}, "tx_datetime", RANGE),
        ({"tx_datetime": "0001-01-01T00:00:00+01:00"}, "tx_datetime", RANGE),
    ],
)
def test_strict_types_and_the_configured_range(
    client: TestClient, change: dict[str, Any], field: str, reason: str
) -> None:
    r = client.post("/v1/score", json={**TX, **change})
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", field]
    assert reason in error["msg"], error


def test_a_batch_names_each_row_out_of_range(client: TestClient) -> None:
    rows = [
        TX,
        {**TX, "transaction_id": 1, "tx_datetime": "1999-12-31T23:59:59"},
        {**TX, "transaction_id": 2, "tx_datetime": "2200-01-01"},
    ]
    r = client.post("/v1/score/batch", json={"transactions": rows})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert [d["loc"] for d in detail] == [
        ["body", "transactions", 1, "tx_datetime"],
        ["body", "transactions", 2, "tx_datetime"],
    ]
    assert detail[0]["type"] == "datetime_range"
    assert detail[0]["ctx"] == {"ge": "2000-01-01T00:00:00", "le": "2100-01-01T00:00:00"}
    assert detail[1]["input"] == "2200-01-01T00:00:00"


def test_the_api_refuses_what_validate_quarantines(
    serving_settings: Callable[..., Settings],
) -> None:
    """One definition: the same rows, sent to the API and to the `validate` stage (without
    the service's own limit on how far ahead of the newest transaction one may be)."""
    rows = [{**TX, **change, "transaction_id": i} for i, change in enumerate(OUT_OF_RANGE)]
    ends = [{**TX, **change} for change in AT_THE_ENDS]
    app = create_app(serving_settings(**{"limits.max_ahead_days": None}))
    with TestClient(app, raise_server_exceptions=False) as client:
        for row in rows:
            assert client.post("/v1/score", json=row).status_code == 422, row
        for i, row in enumerate(ends):
            r = client.post("/v1/score", json={**row, "transaction_id": 20_000_000 + i})
            assert r.status_code == 200, (row, r.text)
    offline = pd.DataFrame(
        rows + [{**row, "transaction_id": 100 + i} for i, row in enumerate(ends)]
    )
    offline[schema.TX_FRAUD], offline[schema.TX_FRAUD_SCENARIO] = 0, 0
    contract = serving_settings().contract
    assert contract is not None
    result = validate_transactions(offline, contract)
    assert sorted(result.quarantine[SOURCE_ROW]) == list(range(len(rows))), result.quarantine[
        REASON
    ].tolist()


def test_bytes_that_are_not_utf8_are_4xx_with_a_reason(client: TestClient) -> None:
    body = json.dumps(TX).encode().replace(b"57.16", b'"\xff\xfe"')
    for path in ("/v1/score", "/v1/score/batch", "/v1/labels"):
        r = client.post(path, content=body, headers=JSON)
        assert r.status_code == 422, r.text
        [error] = r.json()["detail"]
        assert error["type"] == "json_invalid"
        assert error["ctx"]["error"].startswith("not UTF-8: invalid start byte"), error
        for headers in ({"content-type": "text/plain"}, {}):  # bytes echoed in a 422 were a 500
            r = client.post(path, content=body, headers=headers)
            assert r.status_code == 415, r.text
            assert "Content-Type must be application/json" in r.json()["detail"]


def test_text_plain_is_415(client: TestClient) -> None:
    r = client.post("/v1/score", content=json.dumps(TX), headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert r.json() == {"detail": "Content-Type must be application/json (got 'text/plain')"}
    metrics = client.get("/metrics").text
    assert 'fraudops_requests_total{route="/v1/score",status="415"} 1.0' in metrics


def test_the_post_operations_document_413_415_422(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/score", "/v1/score/batch", "/v1/labels"):
        assert {"413", "415", "422"} <= set(paths[path]["post"]["responses"]), path
