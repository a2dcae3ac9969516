"""A trivial HTTP/1.1 server, the floor the open-loop generator is checked against.

It answers every request with 200 and two bytes on a keep-alive connection, so what the
generator (benchmarks/openloop.py) measures against it is its own cost. `stall_at` blocks
the whole server once, for `stall_s`, when request number `stall_at` arrives (as a pause of
a real server would: nothing is read or answered meanwhile); `answer=False` never answers;
`keep_alive=False` closes each connection after one answer without saying so.
`python -m benchmarks.responder PORT` serves until killed.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Responder:
    """What the server does, and how many requests it has read."""

    stall_at: int | None = None
    stall_s: float = 0.2
    answer: bool = True
    keep_alive: bool = True  # False: close each connection after its answer, unannounced
    count: int = 0
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each
    port: int = 0  # once listening

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the requests of one connection until the client closes it."""
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                start = head.find(b"\r\ncontent-length:")
                if start >= 0:
                    await reader.readexactly(int(head[start + 17 : head.index(b"\r\n", start + 2)]))
                self.count += 1
                self.arrivals.append(time.monotonic())
                if self.count == self.stall_at:
                    time.sleep(self.stall_s)  # blocks the event loop: the whole server stalls
                if self.answer:
                    writer.write(RESPONSE)
                if not self.keep_alive:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve(self, port: int, started: threading.Event, stop: asyncio.Event) -> None:
        """Listen on 127.0.0.1:`port` until `stop` is set."""
        server = await asyncio.start_server(self.handle, "127.0.0.1", port)
        self.port = int(server.sockets[0].getsockname()[1])
        started.set()
        async with server:
            await stop.wait()


@contextmanager
def responder_thread(responder: Responder) -> Iterator[int]:
    """Serve `responder` on a free port from a thread; yields the port."""
    started = threading.Event()
    loop_box: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def main() -> None:
        async def go() -> None:
            stop = asyncio.Event()
            loop_box.append((asyncio.get_running_loop(), stop))
            await responder.serve(0, started, stop)

        asyncio.run(go())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield responder.port
    finally:
        loop, stop = loop_box[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


if __name__ == "__main__":
    asyncio.run(Responder().serve(int(sys.argv[1]), threading.Event(), asyncio.Event()))
