"""POST /v1/score and /v1/score/batch."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError

from serving.deps import ScorerDep, SettingsDep
from serving.schemas import Batch, BatchScores, Score, Transaction

router = APIRouter(prefix="/v1", tags=["scoring"])
# Handlers are `async` on purpose: scoring is about a millisecond of CPU, cheaper to run on the
# event loop than to hand to a thread pool; processes (uvicorn workers) are the parallelism.


@router.post("/score", response_model=Score, summary="Score one transaction")
async def score(tx: Transaction, scorer: ScorerDep) -> Score:
    """Fraud probability and decision for one raw transaction, with the version that scored it."""
    scored = scorer.score([tx])
    return Score(
        transaction_id=tx.transaction_id,
        fraud_probability=float(scored.probabilities[0]),
        is_fraud=bool(scored.decisions[0]),
        model_version=scored.model.version,
    )


@router.post("/score/batch", response_model=BatchScores, summary="Score many transactions")
async def score_batch(batch: Batch, scorer: ScorerDep, settings: SettingsDep) -> Response:
    """Scores in request order; all rows are scored by the same model version."""
    limit = settings.limits.max_batch_rows
    if len(batch.transactions) > limit:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "transactions"),
                    "msg": f"at most {limit} transactions per batch, got {len(batch.transactions)}",
                    "input": len(batch.transactions),
                }
            ]
        )
    scored = scorer.score(batch.transactions)
    version = scored.model.version
    # The BatchScores document, written directly: no model object per row to build and check.
    body = {
        "model_version": version,
        "scores": [
            {
                "transaction_id": tx.transaction_id,
                "fraud_probability": p,
                "is_fraud": d,
                "model_version": version,
            }
            for tx, p, d in zip(
                batch.transactions,
                scored.probabilities.tolist(),
                scored.decisions.tolist(),
                strict=True,
            )
        ],
    }
    return Response(orjson.dumps(body), media_type="application/json")
