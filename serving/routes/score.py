"""POST /v1/score and /v1/score/batch: raw transactions in, scores out.

Ordinary FastAPI routes: the body (JSON, UTF-8: serving/json_body.py) is validated by
pydantic into the request models (serving/schemas.py), then against the configured datetime
range, the scorer comes from a dependency, and the answer is written with orjson. They run
on the event loop (`async`): scoring is under a millisecond of CPU, cheaper there than
handed to a thread pool; worker processes are the parallelism.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Response
from fastapi.exceptions import RequestValidationError

from pipelines.schema import TX_DATETIME, DatetimeRange
from serving.deps import ScorerDep, SettingsDep
from serving.json_body import BODY_ERRORS, JsonRoute, require_json
from serving.schemas import Batch, BatchScores, Detail, Score, Transaction

router = APIRouter(
    prefix="/v1",
    tags=["scoring"],
    route_class=JsonRoute,
    dependencies=[Depends(require_json)],
    responses={**BODY_ERRORS, 503: {"model": Detail, "description": "no model loaded yet"}},
)


@router.post("/score", response_model=Score, summary="Score one transaction")
async def score(tx: Transaction, scorer: ScorerDep, settings: SettingsDep) -> Response:
    """Fraud probability and decision for one raw transaction, with the version that scored it."""
    _check_times([tx], settings.datetime_range, batch=False)
    scored = scorer.score([tx])
    answer = {
        "transaction_id": tx["transaction_id"],
        "fraud_probability": float(scored.probabilities[0]),
        "is_fraud": bool(scored.decisions[0]),
        "model_version": scored.model.version,
    }
    return _json(answer)


@router.post("/score/batch", response_model=BatchScores, summary="Score many transactions")
async def score_batch(batch: Batch, scorer: ScorerDep, settings: SettingsDep) -> Response:
    """Scores in request order; all rows are scored by the same model version."""
    txs = batch["transactions"]
    _check_rows(len(txs), settings.limits.max_batch_rows)
    _check_times(txs, settings.datetime_range, batch=True)
    scored = scorer.score(txs)
    version = scored.model.version
    probabilities, decisions = scored.probabilities.tolist(), scored.decisions.tolist()
    scores = [
        {
            "transaction_id": tx["transaction_id"],
            "fraud_probability": p,
            "is_fraud": d,
            "model_version": version,
        }
        for tx, p, d in zip(txs, probabilities, decisions, strict=True)
    ]
    return _json({"model_version": version, "scores": scores})


def _check_rows(rows: int, limit: int) -> None:
    """A 422 like pydantic's own when a batch has more rows than `limits.max_batch_rows`."""
    if rows > limit:
        error = {
            "type": "too_long",
            "loc": ("body", "transactions"),
            "msg": f"at most {limit} transactions per batch, got {rows}",
            "input": rows,
        }
        raise RequestValidationError([error])


def _check_times(txs: Sequence[Transaction], allowed: DatetimeRange, *, batch: bool) -> None:
    """A 422 like pydantic's own for each transaction outside `validate`'s datetime range
    (configured, so not part of the request types)."""
    errors = [
        {
            "type": "datetime_range",
            "loc": ("body", "transactions", i, TX_DATETIME) if batch else ("body", TX_DATETIME),
            "msg": f"Input should be {allowed} (validate.min_datetime, validate.max_datetime)",
            "input": tx[TX_DATETIME].isoformat(),
            "ctx": {"ge": allowed.low.isoformat(), "le": allowed.high.isoformat()},
        }
        for i, tx in enumerate(txs)
        if tx[TX_DATETIME] not in allowed
    ]
    if errors:
        raise RequestValidationError(errors)


def _json(content: Any) -> Response:
    # orjson straight to bytes: the documents above are built from plain values, so FastAPI's
    # response-model validation would only repeat what the scorer guarantees.
    return Response(orjson.dumps(content), media_type="application/json")
