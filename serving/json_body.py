"""What the body of a POST route must be before it is validated: declared JSON (else 415)
and UTF-8 (else a 422 like any broken JSON), never a 5xx. Applied per router: the route
class and the dependency below, and the answers they add to the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute

from serving.schemas import Detail

# The refusals every JSON route documents besides FastAPI's own 422.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": Detail, "description": "body larger than limits.max_body_bytes"},
    415: {"model": Detail, "description": "Content-Type is not application/json"},
}


async def require_json(request: Request) -> None:
    """415 unless the body is declared JSON: `application/json` or `application/*+json`, the
    media types FastAPI parses. Without this, another type reached the validation as bytes."""
    declared = request.headers.get("content-type")
    media = (declared or "").partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        got = f"got {declared!r}" if declared else "none given"
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type must be application/json ({got})",
        )


class Utf8Request(Request):
    """JSON text is UTF-8 (RFC 8259 §8.1): other bytes fail like broken JSON, with the reason,
    where FastAPI would answer a bare 400 ("There was an error parsing the body")."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError as exc:
            text = exc.object.decode("utf-8", errors="replace")
            reason = f"not UTF-8: {exc.reason} at byte {exc.start}"
            raise json.JSONDecodeError(reason, text, exc.start) from None


class JsonRoute(APIRoute):
    """FastAPI's documented way to change the request a route reads (`route_class`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def utf8_handler(request: Request) -> Response:
            return await handler(Utf8Request(request.scope, request.receive))

        return utf8_handler
