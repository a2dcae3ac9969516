"""The body read timeout (serving/timeouts.py): a stalled body gets 408 and the app's own
answer to the disconnect is dropped; a body that keeps coming, and anything after it, is
untouched."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message

from serving.timeouts import BodyTimeout

SCOPE: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/score", "headers": []}


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, then answers 200 with it (or 400 on a disconnect)."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"disconnected"})
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def call(messages: list[Message], stall: bool, timeout_s: float) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if stall:
            await asyncio.Event().wait()  # the client sends nothing more
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(BodyTimeout(echo, timeout_s)(SCOPE, receive, send))
    return sent


def test_a_stalled_body_gets_408_with_connection_close_and_nothing_else() -> None:
    first = {"type": "http.request", "body": b"{", "more_body": True}
    sent = call([first], stall=True, timeout_s=0.001)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_body_that_arrives_is_passed_through() -> None:
    chunks = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"c", "more_body": False},
    ]
    sent = call(chunks, stall=True, timeout_s=60)
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"abc"


def test_waiting_after_the_body_is_not_timed() -> None:
    """After the last chunk, `receive` waits for a disconnect: that is not a stalled body."""

    async def waits_for_disconnect(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        message = await receive()  # blocks until the stub's disconnect, past the timeout
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["type"].encode()})

    sent: list[Message] = []
    gate = asyncio.Event()

    async def receive() -> Message:
        if not gate.is_set():
            gate.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0.05)  # well past the 1 ms timeout
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(BodyTimeout(waits_for_disconnect, 0.001)(SCOPE, receive, send))
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"http.disconnect"
