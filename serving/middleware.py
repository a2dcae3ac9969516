"""Pure ASGI middleware (Starlette's documented form, without BaseHTTPMiddleware's per-request
task and stream): the request body limit (413) and the request metrics, for every route."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import Metrics

TOO_LARGE = b'{"detail":"request body larger than the configured limit"}'


class LimitBody:
    """Answer 413 when a body exceeds `max_bytes`: by its Content-Length, or, for a chunked
    body (no length), by buffering it up to the limit before the app sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await _too_large(send)
            else:
                await self.app(scope, receive, send)
            return
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await _too_large(send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


async def _too_large(send: Send) -> None:
    await send_json(send, 413, TOO_LARGE)


async def send_json(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Answer with a JSON `body` from a middleware, before (or instead of) the app."""
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def _route_of(scope: Scope) -> str:
    """The path template of the route that answered; for a request refused before routing
    (413), its path when that is a documented path of the app; else "unmatched"."""
    route: Any = scope.get("route")
    if route is not None:
        return str(route.path)
    app: Any = scope.get("app")
    documented = app.openapi()["paths"] if app is not None else {}  # cached by FastAPI
    return str(scope["path"]) if scope["path"] in documented else "unmatched"


class RecordMetrics:
    """Count requests and time them by route template and status (outermost: every answer
    is counted, a 413 from `LimitBody` included)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            labels = (_route_of(scope), str(status[0]))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
