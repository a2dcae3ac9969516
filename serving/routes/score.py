"""POST /v1/score and /v1/score/batch."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from serving.deps import ScorerDep, SettingsDep
from serving.schemas import Batch, BatchScores, Score, Transaction

router = APIRouter(prefix="/v1", tags=["scoring"])
# Handlers are `async` on purpose: scoring is about a millisecond of CPU, cheaper to run on the
# event loop than to hand to a thread pool; processes (uvicorn workers) are the parallelism.


@router.post("/score", response_model=Score, summary="Score one transaction")
async def score(tx: Transaction, scorer: ScorerDep) -> Score:
    """Fraud probability and decision for one raw transaction, with the version that scored it."""
    _, scores = scorer.score([tx])
    return scores[0]


@router.post("/score/batch", response_model=BatchScores, summary="Score many transactions")
async def score_batch(batch: Batch, scorer: ScorerDep, settings: SettingsDep) -> BatchScores:
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
    model, scores = scorer.score(batch.transactions)
    return BatchScores(model_version=model.version, scores=scores)
