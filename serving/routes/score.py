"""POST /v1/score and /v1/score/batch: raw transactions in, scores out.

Ordinary FastAPI routes: the body (JSON, UTF-8: serving/json_body.py) is validated by
pydantic into the request models (serving/schemas.py), then against the configured datetime
range; the scorer comes from a dependency, and the answer is written with orjson. They run
on the event loop when the online store is local (SQLite: a request is under a millisecond
of CPU, cheaper there than handed to a thread, and one thread per worker never contends for
the store's write lock with itself), and in the thread pool when the store is across the
network (Redis): a slow store then holds a thread, not the event loop and every other
request of the worker with it.

Retries are safe: a transaction id answered before gets its first answer again (same score,
same version), and a different payload under that id is a 409 (serving/store/__init__.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from pipelines.reasons import ReasonsUnavailableError
from pipelines.schema import TX_DATETIME, DatetimeRange
from serving.deps import ScorerDep, SettingsDep
from serving.features import EPOCH
from serving.json_body import BODY_ERRORS, JsonRoute, require_json
from serving.schemas import Batch, BatchScores, Detail, RequestTypes, Score, Transaction
from serving.scoring import Scored, Scorer
from serving.store import TooFarAheadError

RESPONSES: dict[int | str, dict[str, Any]] = {
    **BODY_ERRORS,
    409: {"model": Detail, "description": "transaction_id already scored with another payload"},
    503: {
        "model": Detail,
        "description": "no model loaded yet, the online store is unreachable or "
        "re-seeding, or the capture log cannot be written (retry after Retry-After)",
    },
}


Explain = Query(
    False,
    description="true: each score scored now also gets its reasons, the 3 largest exact "
    "TreeSHAP contributions to the model's raw score (log-odds; a random forest's: the "
    "probability), by magnitude. Not causes. Costs CPU: the first such request of a worker "
    "also loads the explainer (seconds).",
)


def make_router(types: RequestTypes) -> APIRouter:
    """The scoring routes, their request bodies those of the feature declaration (each
    declared column a typed field: serving/schemas.py `request_types`)."""
    router = APIRouter(
        prefix="/v1",
        tags=["scoring"],
        route_class=JsonRoute,
        dependencies=[Depends(require_json)],
        responses=RESPONSES,
    )

    async def score(
        tx: Transaction, scorer: ScorerDep, settings: SettingsDep, explain: bool = Explain
    ) -> Response:
        """Fraud probability and decision for one raw transaction, with the version that
        scored it (and its reasons, with `?explain=true`)."""
        _check_times([tx], settings.datetime_range, batch=False)
        scored = await _scored(scorer, [tx], ("body",), explain)
        answer: dict[str, Any] = {
            "transaction_id": tx["transaction_id"],
            "fraud_probability": float(scored.probabilities[0]),
            "is_fraud": bool(scored.decisions[0]),
            "model_version": int(scored.answers.version[0]),
        }
        if scored.reasons is not None:
            answer["reasons"] = _reasons(scored.reasons[0])
            answer["explanation"] = scored.explanation
        return _json(answer)

    async def score_batch(
        batch: Batch, scorer: ScorerDep, settings: SettingsDep, explain: bool = Explain
    ) -> Response:
        """Scores in request order. The rows scored now are all scored by one model version
        (`model_version`); a row answered before keeps its first answer and its version
        (and, with `?explain=true`, null reasons: its features are not kept)."""
        txs = batch["transactions"]
        _check_rows(len(txs), settings.limits.max_batch_rows)
        _check_unique(txs)
        _check_times(txs, settings.datetime_range, batch=True)
        scored = await _scored(scorer, txs, ("body", "transactions"), explain)
        answers = scored.answers
        probabilities, decisions = answers.probability.tolist(), answers.is_fraud.tolist()
        scores = [
            {
                "transaction_id": tx["transaction_id"],
                "fraud_probability": p,
                "is_fraud": d,
                "model_version": v,
            }
            for tx, p, d, v in zip(
                txs, probabilities, decisions, answers.version.tolist(), strict=True
            )
        ]
        if scored.reasons is None:
            return _json({"model_version": scored.version, "scores": scores})
        for answer, why in zip(scores, scored.reasons, strict=True):
            answer["reasons"] = _reasons(why)
        return _json(
            {"model_version": scored.version, "scores": scores, "explanation": scored.explanation}
        )

    # The bodies' types are the declaration's, known only now: FastAPI reads them from the
    # annotations when the route is added.
    score.__annotations__["tx"] = types.transaction
    score_batch.__annotations__["batch"] = types.batch
    router.post("/score", response_model=Score, summary="Score one transaction")(score)
    router.post("/score/batch", response_model=BatchScores, summary="Score many transactions")(
        score_batch
    )
    return router


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


def _reasons(pairs: list[tuple[str, float]] | None) -> list[dict[str, Any]] | None:
    if pairs is None:
        return None
    return [{"feature": name, "contribution": value} for name, value in pairs]


async def _scored(
    scorer: Scorer, txs: list[Transaction], loc: tuple[str, ...], explain: bool
) -> Scored:
    """`scorer.score(txs, explain)`; transactions dated too far ahead are a 422 on their
    field, reasons asked of a model that has none a 422. Explained requests run in the
    thread pool (their CPU would hold the event loop)."""
    try:
        if scorer.store.remote or explain:
            return await run_in_threadpool(scorer.score, txs, explain)
        return scorer.score(txs)
    except ReasonsUnavailableError as exc:
        raise HTTPException(422, f"explain=true: {exc}") from None
    except TooFarAheadError as exc:
        limit = EPOCH + dt.timedelta(microseconds=exc.limit_us)
        refused = set(exc.ids)
        errors = [
            {
                "type": "too_far_ahead",
                "loc": (*loc, *((i,) if len(loc) > 1 else ()), "tx_datetime"),
                "msg": f"after {limit.isoformat()}: the newest transaction seen plus "
                "limits.max_ahead_days",
                "input": tx["tx_datetime"].isoformat(),
            }
            for i, tx in enumerate(txs)
            if tx["transaction_id"] in refused
        ]
        raise RequestValidationError(errors) from None


def _check_unique(txs: list[Transaction]) -> None:
    """A 422 naming the rows whose transaction_id an earlier row of the batch has."""
    seen: set[int] = set()
    errors = []
    for i, tx in enumerate(txs):
        tid = tx["transaction_id"]
        if tid in seen:
            errors.append(
                {
                    "type": "duplicate_id",
                    "loc": ("body", "transactions", i, "transaction_id"),
                    "msg": f"transaction_id {tid} appears more than once in the batch",
                    "input": tid,
                }
            )
        seen.add(tid)
    if errors:
        raise RequestValidationError(errors)


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
