"""Exception handlers: each domain error becomes its HTTP answer here, and only here."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serving.capture import CaptureError
from serving.model import ModelNotReadyError
from serving.store import (
    ConflictError,
    StoreNotSeededError,
    StoreUnavailableError,
)

RETRY_AFTER_S = 1  # what a 503 tells the client to wait
RESEED_RETRY_AFTER_S = 5


def json_safe(value: Any) -> Any:
    """What a 422 echoes, as JSON can carry it, whatever the input: bytes (a body FastAPI did
    not parse) as text, NaN and infinity as text, exceptions (pydantic's `ctx`) as their
    message, anything else FastAPI cannot encode as its repr."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, BaseException):
        return str(value)
    try:
        return json_safe(jsonable_encoder(value))
    except Exception:  # an input of any type may be echoed: the answer is still a 422
        return repr(value)


async def invalid_request(request: Request, exc: Exception) -> Response:
    """422: every error with the field's location, the reason and the input (the standard
    library's JSON, as Starlette writes it: echoed integers may exceed 64 bits)."""
    assert isinstance(exc, RequestValidationError)
    detail = json_safe(exc.errors())
    body = json.dumps({"detail": detail}, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=422, media_type="application/json")


async def model_not_ready(request: Request, exc: Exception) -> Response:
    """503 with the reason: the client may retry; /ready says the same."""
    return JSONResponse(
        {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


async def conflict(request: Request, exc: Exception) -> Response:
    """409: the ids already answered for another payload; nothing of the request was kept."""
    assert isinstance(exc, ConflictError)
    return JSONResponse({"detail": str(exc), "transaction_ids": exc.ids}, status_code=409)


async def unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After: the store or the capture log cannot be used now; nothing of
    the request was answered (a retry is safe: replays are idempotent)."""
    wait = RESEED_RETRY_AFTER_S if isinstance(exc, StoreNotSeededError) else RETRY_AFTER_S
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(wait)})


def add_exception_handlers(app: FastAPI) -> None:
    """Register the handlers above on `app`."""
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ModelNotReadyError, model_not_ready)
    app.add_exception_handler(ConflictError, conflict)
    app.add_exception_handler(StoreUnavailableError, unavailable)
    app.add_exception_handler(CaptureError, unavailable)
