"""POST /v1/score and /v1/score/batch."""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from serving.schemas import BATCH, TRANSACTION, BatchScores, Score

T = TypeVar("T")

router = APIRouter(prefix="/v1", tags=["scoring"])
# Both handlers take the raw body, validate it with pydantic straight from the JSON bytes
# into TypedDicts (`validate_json`), and write their answer with orjson: FastAPI's body
# parameter and response model cost more than scoring one transaction does. They run on the
# event loop (`async`): scoring is under a millisecond of CPU, cheaper there than handed to
# a thread pool; processes (uvicorn workers) are the parallelism.


def _body(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """The OpenAPI request body of what `adapter` validates, nested types inlined."""
    schema = adapter.json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"required": True, "content": {"application/json": {"schema": inline(schema)}}}


@router.post(
    "/score",
    response_model=Score,
    summary="Score one transaction",
    openapi_extra={"requestBody": _body(TRANSACTION)},
)
async def score(request: Request) -> Response:
    """Fraud probability and decision for one raw transaction, with the version that scored it."""
    answer = score_one(request.app, request.headers.get("content-type", ""), await request.body())
    return Response(answer, media_type="application/json")


@router.post(
    "/score/batch",
    response_model=BatchScores,
    summary="Score many transactions",
    openapi_extra={"requestBody": _body(BATCH)},
)
async def score_batch(request: Request) -> Response:
    """Scores in request order; all rows are scored by the same model version."""
    answer = score_many(request.app, request.headers.get("content-type", ""), await request.body())
    return Response(answer, media_type="application/json")


def score_one(app: Any, content_type: str, body: bytes) -> bytes:
    """POST /v1/score: the JSON answer, or RequestValidationError / ModelNotReadyError."""
    tx = _parse(TRANSACTION, content_type, body)
    scored = app.state.scorer.score([tx])
    answer = {
        "transaction_id": tx["transaction_id"],
        "fraud_probability": float(scored.probabilities[0]),
        "is_fraud": bool(scored.decisions[0]),
        "model_version": scored.model.version,
    }
    return orjson.dumps(answer)


def score_many(app: Any, content_type: str, body: bytes) -> bytes:
    """POST /v1/score/batch: the JSON answer (the BatchScores document, written directly: no
    model object per row), or RequestValidationError / ModelNotReadyError."""
    txs = _parse(BATCH, content_type, body)["transactions"]
    limit = app.state.settings.limits.max_batch_rows
    if len(txs) > limit:
        _invalid(
            "too_long",
            ("transactions",),
            f"at most {limit} transactions per batch, got {len(txs)}",
            len(txs),
        )
    scored = app.state.scorer.score(txs)
    version = scored.model.version
    scores = [
        {
            "transaction_id": tx["transaction_id"],
            "fraud_probability": p,
            "is_fraud": d,
            "model_version": version,
        }
        for tx, p, d in zip(
            txs, scored.probabilities.tolist(), scored.decisions.tolist(), strict=True
        )
    ]
    return orjson.dumps({"model_version": version, "scores": scores})


# The scoring lane (serving/middleware.py) answers these paths without FastAPI's routing,
# dependency and response machinery; the routes above are what OpenAPI documents and what
# an app without the lane serves. Both call the same functions.
LANE = {"/v1/score": score_one, "/v1/score/batch": score_many}


def _parse(adapter: TypeAdapter[T], content_type: str, body: bytes) -> T:
    """The body validated by `adapter`, or a 422 naming each invalid field as FastAPI would
    (loc from "body")."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        _invalid("content_type", (), f"expected Content-Type application/json, got {media!r}")
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _invalid(kind: str, loc: tuple[str, ...], msg: str, value: Any = None) -> NoReturn:
    raise RequestValidationError(
        [{"type": kind, "loc": ("body", *loc), "msg": msg, "input": value}]
    )
