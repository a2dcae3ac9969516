"""A keep-alive load for fault tests: N raw HTTP/1.1 connections, each sending /v1/score as
soon as its previous answer is read, and counting what happened to every request it sent.

Raw sockets (asyncio streams) rather than an HTTP client: a client library retries or hides
a reset, and the point is to see each one. A connection the server closes (`Connection:
close`) is replaced by a fresh one; once the service refuses fresh connections, that client
stops.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

REQUEST_TIMEOUT_S = 30.0  # an answer this late is counted as stalled


@dataclass
class Tally:
    """What happened to the requests sent (each sent request lands in exactly one of
    answered, reset, lost, fresh_reset, bad, stalled)."""

    sent: int = 0
    answered: int = 0  # a complete 200 answer
    reset: int = 0  # ECONNRESET/EPIPE on a connection that had been answered before
    lost: int = 0  # the connection closed cleanly without an answer
    fresh_reset: int = 0  # reset before a fresh connection's first answer: never accepted
    bad: int = 0  # an answer that was not a complete 200
    stalled: int = 0  # no answer within REQUEST_TIMEOUT_S
    closed_by_server: int = 0  # answers carrying `Connection: close`
    refused: int = 0  # fresh connections refused (the service no longer accepts)
    slowest_s: float = 0.0  # the longest wait for an answer
    errors: list[str] = field(default_factory=list, repr=False)

    def unanswered(self) -> int:
        """Requests sent on an accepted connection that got no complete answer."""
        return self.reset + self.lost + self.bad + self.stalled


def score_request(tx: dict[str, Any], transaction_id: int) -> bytes:
    body = json.dumps({**tx, "transaction_id": transaction_id}).encode()
    head = (
        "POST /v1/score HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer with a Content-Length body: status, headers (lower-case), body.
    Raises IncompleteReadError when the connection ends before the answer is complete."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


class Load:
    """`connections` clients on `port` scoring `tx` (unique transaction ids from `first_id`)
    until `stop()` or until the service refuses them."""

    def __init__(self, port: int, tx: dict[str, Any], connections: int, first_id: int) -> None:
        self.port, self.tx, self.n = port, tx, connections
        self.ids = itertools.count(first_id)
        self.tally = Tally()
        self.answered_once = 0  # clients that have had at least one answer
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Each client finishes the request it is waiting for, then closes."""
        self._stop.set()

    async def run(self) -> Tally:
        await asyncio.gather(*(self._client() for _ in range(self.n)))
        return self.tally

    async def _client(self) -> None:
        first = True  # the client's first connection (opened before any fault)
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:  # refused: the service stopped accepting
                self.tally.refused += 1
                return
            try:
                keep = await self._converse(reader, writer, first)
            finally:
                writer.close()
            first = False
            if not keep:
                return

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bool
    ) -> bool:
        """Requests on one connection until the server closes it; whether to open another."""
        t, answered_here = self.tally, 0
        while not self._stop.is_set():
            t.sent += 1
            sent_at = time.monotonic()
            try:
                writer.write(score_request(self.tx, next(self.ids)))
                await writer.drain()
                status, headers, body = await asyncio.wait_for(
                    read_answer(reader), REQUEST_TIMEOUT_S
                )
            except (ConnectionResetError, BrokenPipeError) as exc:
                if answered_here == 0:
                    t.fresh_reset += 1
                else:
                    t.reset += 1
                    t.errors.append(f"reset after {answered_here} answers: {exc!r}")
                return True
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    t.bad += 1
                    t.errors.append(f"incomplete answer: {exc.partial[:80]!r}")
                else:
                    t.lost += 1
                    t.errors.append(f"closed without an answer after {answered_here}")
                return True
            except TimeoutError:
                t.stalled += 1
                return False
            t.slowest_s = max(t.slowest_s, round(time.monotonic() - sent_at, 3))
            if status != 200 or not body.endswith(b"}"):
                t.bad += 1
                t.errors.append(f"{status}: {body[:80]!r}")
            else:
                t.answered += 1
            if answered_here == 0 and first:
                self.answered_once += 1
            answered_here += 1
            if headers.get("connection", "").lower() == "close":
                t.closed_by_server += 1
                return True
        return False
