"""The scoring API end to end in-process: contract, errors, idempotence, capture, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient

from serving.deps import get_scorer
from serving.main import create_app
from serving.scoring import Scorer
from serving.settings import Settings
from tests.captures import read_predictions
from tests.conftest import MODEL_NAME

pytestmark = pytest.mark.integration

TX = {
    "transaction_id": 10_000_001,
    "tx_datetime": "2018-05-11T12:30:05",
    "customer_id": 7,
    "terminal_id": 11,
    "tx_amount": 57.16,
}


@pytest.fixture
def client(serving_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(serving_settings()), raise_server_exceptions=False) as c:
        yield c


def test_a_dependency_of_the_scoring_routes_runs_on_every_scored_request(
    serving_settings: Callable[..., Settings],
) -> None:
    """What a user adds in front of the scorer (an auth or tenant check) applies to
    /v1/score and /v1/score/batch: they are ordinary routes, nothing answers before them."""
    app = create_app(serving_settings())
    seen: list[str] = []

    async def tenant_checked(request: Request) -> Scorer:
        seen.append(request.url.path)
        if "x-tenant" not in request.headers:
            raise HTTPException(401, "x-tenant header required")
        return await get_scorer(request)

    app.dependency_overrides[get_scorer] = tenant_checked
    with TestClient(app) as c:
        assert c.post("/v1/score", json=TX).status_code == 401
        tenant = {"x-tenant": "acme"}
        assert c.post("/v1/score", json=TX, headers=tenant).status_code == 200
        batch = {"transactions": [TX, {**TX, "transaction_id": 10_000_002}]}
        assert c.post("/v1/score/batch", json=batch, headers=tenant).status_code == 200
        assert c.post("/v1/score/batch", json=batch).status_code == 401
    assert seen == ["/v1/score", "/v1/score", "/v1/score/batch", "/v1/score/batch"]


def test_score_one_transaction(client: TestClient) -> None:
    r = client.post("/v1/score", json=TX)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["transaction_id"] == TX["transaction_id"]
    assert 0 <= body["fraud_probability"] <= 1
    assert body["model_version"] == 1
    assert isinstance(body["is_fraud"], bool)


def test_batch_keeps_order_and_names_the_version(client: TestClient) -> None:
    txs = [{**TX, "transaction_id": 10_000_100 + i, "tx_amount": 10.0 * i} for i in range(5)]
    r = client.post("/v1/score/batch", json={"transactions": txs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == 1
    assert [s["transaction_id"] for s in body["scores"]] == [t["transaction_id"] for t in txs]


def test_model_ready_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["model_version"] == 1
    info = client.get("/v1/model").json()
    assert info["name"] == MODEL_NAME
    assert info["alias"] == "champion"
    assert 0 < info["threshold"] < 1
    assert len(info["data_version"]) == 32
    assert info["scorer"] == "compiled"  # the project's model takes the fast path (ADR 0003)


def test_a_retry_gets_the_first_answer_and_changes_nothing(
    client: TestClient, tmp_path: Path
) -> None:
    first = client.post("/v1/score", json=TX).json()
    again = client.post("/v1/score", json=TX).json()
    assert again == first  # same score, same decision, same version
    later = {**TX, "transaction_id": TX["transaction_id"] + 1, "tx_datetime": "2018-05-11T12:31:00"}
    client.post("/v1/score", json=later)
    records = _captured(tmp_path)
    counts = [
        r["features"]["customer_id_nb_tx_1day_window"]
        for r in records
        if r["customer_id"] == TX["customer_id"]
    ]
    assert len(counts) == 2  # the retry is not captured again
    assert counts[1] == counts[0] + 1  # a new one counts the first once, not twice


def test_another_payload_under_a_scored_id_is_a_conflict(client: TestClient) -> None:
    tx = {**TX, "transaction_id": TX["transaction_id"] + 50}
    first = client.post("/v1/score", json=tx).json()
    changed = client.post("/v1/score", json={**tx, "tx_amount": 9999.0})
    assert changed.status_code == 409
    assert changed.json()["transaction_ids"] == [tx["transaction_id"]]
    assert str(tx["transaction_id"]) in changed.json()["detail"]
    assert client.post("/v1/score", json=tx).json() == first  # the first answer still stands
    batch = [{**tx, "transaction_id": tx["transaction_id"] + 1}, {**tx, "tx_amount": 1.0}]
    assert client.post("/v1/score/batch", json={"transactions": batch}).status_code == 409
    # nothing of a refused batch is kept: its new row is scored fresh afterwards
    alone = client.post("/v1/score", json=batch[0])
    assert alone.status_code == 200
    assert _metric(client, "fraudops_replays_total") == 1


def test_a_batch_with_an_id_twice_is_refused(client: TestClient) -> None:
    tx = {**TX, "transaction_id": TX["transaction_id"] + 70}
    response = client.post("/v1/score/batch", json={"transactions": [tx, tx]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "transactions", 1, "transaction_id"]


def test_a_transaction_far_ahead_of_the_newest_is_refused_and_history_stays(
    client: TestClient, tmp_path: Path
) -> None:
    tx = {**TX, "transaction_id": TX["transaction_id"] + 90}
    before = client.post("/v1/score", json=tx).json()
    future = {
        **tx,
        "transaction_id": tx["transaction_id"] + 1,
        "tx_datetime": "2030-01-01T00:00:00",
    }
    refused = client.post("/v1/score", json=future)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["type"] == "too_far_ahead"
    assert refused.json()["detail"][0]["loc"] == ["body", "tx_datetime"]
    ok = {**tx, "transaction_id": tx["transaction_id"] + 3, "tx_datetime": "2018-05-11T12:59:00"}
    batch = client.post("/v1/score/batch", json={"transactions": [ok, future]})
    assert batch.status_code == 422
    assert batch.json()["detail"][0]["loc"] == ["body", "transactions", 1, "tx_datetime"]
    same_day = {
        **tx,
        "transaction_id": tx["transaction_id"] + 2,
        "tx_datetime": "2018-05-11T13:00:00",
    }
    assert client.post("/v1/score", json=same_day).status_code == 200
    rows = [r for r in _captured(tmp_path) if r["customer_id"] == TX["customer_id"]]
    assert rows[-1]["features"]["customer_id_nb_tx_30day_window"] >= 2
    assert before["model_version"] == rows[-1]["model_version"]


def _metric(client: TestClient, name: str) -> float:
    text = client.get("/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def _captured(tmp_path: Path) -> list[dict[str, Any]]:
    return read_predictions(tmp_path / "capture")


def test_every_scored_transaction_is_captured(client: TestClient, tmp_path: Path) -> None:
    for i in range(20):
        client.post("/v1/score", json={**TX, "transaction_id": 10_000_200 + i})
    records = _captured(tmp_path)
    assert len(records) == 20
    record = records[0]
    assert {
        "captured_at",
        "transaction_id",
        "features",
        "fraud_probability",
        "is_fraud",
        "model_version",
        "tx_amount",
        "tx_datetime",
    } <= set(record)
    assert len(record["features"]) == 18


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"tx_amount": None}, "tx_amount", "valid number"),
        ({"tx_amount": -1}, "tx_amount", "greater than or equal to 0"),
        ({"tx_amount": "abc"}, "tx_amount", "valid number"),
        ({"tx_datetime": "yesterday"}, "tx_datetime", "datetime"),
        ({"customer_id": 1.5}, "customer_id", "integer"),
        ({"customer_id": 2**70}, "customer_id", "less than or equal"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str, reason: str
) -> None:
    r = client.post("/v1/score", json={**TX, **change})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["loc"][-1] == field and reason in d["msg"] for d in detail), detail


def test_missing_field_and_non_finite_amount(client: TestClient) -> None:
    missing = {k: v for k, v in TX.items() if k != "terminal_id"}
    r = client.post("/v1/score", json=missing)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "terminal_id"]
    for token in ("Infinity", "NaN"):
        body = json.dumps(TX).replace("57.16", token)
        r = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "tx_amount"]


def test_too_many_rows_is_422(serving_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(serving_settings(**{"limits.max_batch_rows": 3}))) as c:
        txs = [{**TX, "transaction_id": i} for i in range(4)]
        r = c.post("/v1/score/batch", json={"transactions": txs})
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"] == "at most 3 transactions per batch, got 4"


def test_oversized_body_is_413(serving_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(serving_settings(**{"limits.max_body_bytes": 2048}))) as c:
        txs = [{**TX, "transaction_id": i} for i in range(100)]
        r = c.post("/v1/score/batch", json={"transactions": txs})
        assert r.status_code == 413
        metrics = c.get("/metrics").text
        assert 'fraudops_requests_total{route="/v1/score/batch",status="413"} 1.0' in metrics
        chunks = (json.dumps(TX).encode() for _ in range(200))  # no Content-Length: counted
        r = c.post("/v1/score", content=chunks, headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_broken_json_is_422(client: TestClient) -> None:
    r = client.post(
        "/v1/score", content=b'{"transaction_id": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422


def test_labels_match_scored_and_keep_unknown(client: TestClient, tmp_path: Path) -> None:
    client.post("/v1/score", json=TX)
    r = client.post(
        "/v1/labels",
        json={
            "labels": [
                {"transaction_id": TX["transaction_id"], "tx_fraud": 1},
                {"transaction_id": 999_999_999, "tx_fraud": 0},
            ]
        },
    )
    assert r.json() == {"received": 2, "matched": 1, "unknown": 1}
    again = client.post(
        "/v1/labels", json={"labels": [{"transaction_id": TX["transaction_id"], "tx_fraud": 1}]}
    )
    assert again.json()["matched"] == 1  # duplicates are idempotent


def test_metrics_expose_requests_latency_scores_and_version(client: TestClient) -> None:
    client.post("/v1/score", json=TX)
    client.post("/v1/score", json={**TX, "tx_amount": -5})
    text = client.get("/metrics").text
    assert 'fraudops_requests_total{route="/v1/score",status="200"} 1.0' in text
    assert 'fraudops_requests_total{route="/v1/score",status="422"} 1.0' in text
    assert 'fraudops_request_seconds_bucket{le="0.5",route="/v1/score",status="200"}' in text
    assert "fraudops_fraud_probability_count 1.0" in text
    assert f'fraudops_model_version{{alias="champion",name="{MODEL_NAME}"}} 1.0' in text
    assert "fraudops_capture_dropped_total 0.0" in text


def test_docs_reference_the_request_models_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, model in (("/v1/score", "Transaction"), ("/v1/score/batch", "Batch")):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{model}"}, path
        assert "examples" in json.dumps(schemas[model]), model
    assert set(schemas["Transaction"]["required"]) == {
        "transaction_id",
        "tx_datetime",
        "customer_id",
        "terminal_id",
        "tx_amount",
    }
    items = schemas["Batch"]["properties"]["transactions"]["items"]
    assert items == {"$ref": "#/components/schemas/Transaction"}
    assert "examples" in json.dumps(schemas["Labels"])
    assert client.get("/docs").status_code == 200


def test_admin_routes_are_off_without_a_token(client: TestClient) -> None:
    assert client.post("/admin/reload").status_code == 404


def test_explain_gives_each_fresh_score_its_exact_reasons(
    client: TestClient, tmp_path: Path
) -> None:
    """?explain=true: the 3 largest exact contributions of the features the row was scored
    with (recomputed from its capture); base + all contributions = its log-odds; a replay
    answers as before, with null reasons; without the flag the body has no reasons."""
    import mlflow.sklearn
    import numpy as np

    from pipelines import reasons

    plain = client.post("/v1/score", json=TX).json()
    assert "reasons" not in plain
    fresh = {**TX, "transaction_id": TX["transaction_id"] + 7}
    r = client.post("/v1/score?explain=true", json=fresh)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["explanation"]["method"] == "exact"
    assert body["explanation"]["output"] == "log_odds"
    assert len(body["reasons"]) == 3
    record = next(x for x in _captured(tmp_path) if x["transaction_id"] == fresh["transaction_id"])
    names = list(record["features"])
    x = np.array([[record["features"][n] for n in names]], dtype=np.float64)
    model = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/1")
    explainer = reasons.Explainer(model, len(names))
    contrib = explainer.contributions(x, "exact")
    raw = explainer.raw_score(x)[0]
    assert abs(contrib.base + contrib.values.sum() - raw) < 1e-6
    assert abs(body["explanation"]["base_value"] - contrib.base) < 1e-12
    want = reasons.top(contrib, names, 3)
    assert [w["feature"] for w in body["reasons"]] == want.features[0].tolist()
    got = [w["contribution"] for w in body["reasons"]]
    np.testing.assert_allclose(got, want.contributions[0], rtol=0, atol=1e-9)
    assert abs(1 / (1 + np.exp(-raw)) - body["fraud_probability"]) < 1e-9

    batch = {"transactions": [TX, {**TX, "transaction_id": TX["transaction_id"] + 8}]}
    answer = client.post("/v1/score/batch?explain=true", json=batch).json()
    assert answer["scores"][0]["reasons"] is None  # TX was answered before: replayed
    assert answer["scores"][0]["fraud_probability"] == plain["fraud_probability"]
    assert len(answer["scores"][1]["reasons"]) == 3
    assert answer["explanation"]["method"] == "exact"
    assert client.post("/v1/score?explain=maybe", json=fresh).status_code == 422
