"""The body read timeout: a request whose body stalls is answered 408 and its connection
closed, instead of holding a worker's connection until the client leaves.

A pure ASGI middleware (as serving/middleware.py's): it wraps `receive` while the body is
still arriving. The head's own timeout is the protocol's (serving/protocol.py): it has to
act before the app sees a request.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.middleware import send_json

log = logging.getLogger(__name__)

TIMED_OUT = b'{"detail":"request body not received in time"}'


class BodyTimeout:
    """408 (`Connection: close`) when no part of a request body arrives for `timeout_s`."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app, self.timeout_s = app, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done, started, timed_out = False, False, False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done or timed_out:
                return await receive()
            try:
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                log.warning(
                    "%s %s: body stalled for %ss", scope["method"], scope["path"], self.timeout_s
                )
                if not started:
                    await _timed_out(send)
                return {"type": "http.disconnect"}
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out and not started:
                return  # the app's answer to the disconnect: the client has its 408
            started = True
            await send(message)

        await self.app(scope, timed_receive, guarded_send)


async def _timed_out(send: Send) -> None:
    await send_json(send, 408, TIMED_OUT, ((b"connection", b"close"),))
