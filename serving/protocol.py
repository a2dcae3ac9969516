"""The HTTP protocol every worker runs (one uvicorn process, or each gunicorn worker):
uvicorn's httptools protocol with three changes (ADR 0007).

- Drain at shutdown without resets. uvicorn closes an idle keep-alive connection at once;
  when the client's next request is already in the socket, unread, that close is a TCP
  reset and the request is never answered. Here an idle connection has `drain_idle_s` to
  send one more request, answered with `Connection: close`; a quiet one is closed cleanly.
- A header read timeout: a request head not complete within `header_timeout_s` of
  connecting or of the previous answer gets 408 and the connection is closed. uvicorn's
  `timeout_keep_alive` only covers a connection that sends nothing at all.
- A connection cap: a connection beyond `max_connections` is answered 503 and closed as it
  is accepted, so slow clients cannot hold every file descriptor (uvicorn's own
  `limit_concurrency` answers 503 too, but only once a head is complete).

Every close here is a lingering close (RFC 9112, section 9.6): send FIN, read and drop
what the client still sends until it closes or `LINGER_S`, then close; a close with unread
data would be a reset. It overrides uvicorn internals, pinned by the version bound in
pyproject.toml and by tests/unit/serving/test_protocol.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.settings import Server

log = logging.getLogger(__name__)

LINGER_S = 2.0  # after our FIN, how long a client may take to close its side
WARN_EVERY_S = 10.0  # refused connections are logged at most this often

TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 15\r\nconnection: close\r\n\r\nRequest Timeout"
)
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 19\r\nretry-after: 1\r\nconnection: close\r\n\r\nService Unavailable"
)


class Tally:
    """Counts an event of every connection in the process, logged at WARNING with the count
    at most every WARN_EVERY_S (an attack would otherwise log a line per connection)."""

    def __init__(self, message: str) -> None:
        self.message, self.count, self.logged_at = message, 0, float("-inf")

    def add(self, *args: object) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged_at >= WARN_EVERY_S:
            self.logged_at = now
            log.warning("%s (%d so far)", self.message % args, self.count)


REFUSED = Tally("connections beyond server.max_connections (%d) answered 503 and closed")
DROPPED = Tally("connections that sent more after the service closed them (dropped unread)")


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    drain_idle_s: float = 1.0
    max_connections: int = 512
    linger_s: float = LINGER_S


class DrainingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; `limits` is set by `protocol_class`."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.draining = False
        self.lingering = False  # FIN sent: what arrives now is read and dropped
        self.dropped = False  # something arrived while lingering
        self.head_started = False  # bytes of a request head arrived, the head is not complete
        self.head_timer: asyncio.TimerHandle | None = None
        self.close_timer: asyncio.TimerHandle | None = None  # the drain's or the linger's

    # The connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse()
            return
        self.head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self.head_timer, self.close_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            if not self.dropped:
                self.dropped = True
                DROPPED.add()
            return
        super().data_received(data)

    # The parser's callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_started = True

    def on_headers_complete(self) -> None:
        self.head_started = False
        if self.head_timer is not None:
            self.head_timer.cancel()
        super().on_headers_complete()
        if self.draining and self.cycle is not None:
            self.cycle.keep_alive = False  # answered with `Connection: close`

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or not self._idle():
            return
        self.head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)
        if self.draining:  # a pipelined answer begun before the drain, kept alive
            self._close_later(self.limits.drain_idle_s, self._drain_idle_expired)

    # Called by uvicorn's server on SIGTERM (or SIGINT), for every open connection.
    def shutdown(self) -> None:
        self.draining = True
        if self.lingering or self.transport.is_closing():
            return  # already on its way out
        if self._idle():
            if not self.head_started:  # else the header timer decides
                self._close_later(self.limits.drain_idle_s, self._drain_idle_expired)
        elif self.cycle is not None:
            self.cycle.keep_alive = False

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self._close_cleanly()

    # Ours
    def _idle(self) -> bool:
        """No request being answered (between requests, or before the first)."""
        return self.cycle is None or self.cycle.response_complete

    def _head_timed_out(self) -> None:
        if self.transport.is_closing():
            return
        if self.head_started:
            self.transport.write(TIMED_OUT)
        self._close_cleanly()

    def _drain_idle_expired(self) -> None:
        # A request that arrived is answered and closes the connection; a head still
        # arriving is answered or cut by the header timeout.
        if not self.transport.is_closing() and self._idle() and not self.head_started:
            self._close_cleanly()

    def _close_cleanly(self) -> None:
        """FIN now; read and drop what still arrives; close when the client closes (uvicorn
        closes on EOF) or after `linger_s`."""
        if self.lingering:
            return
        self._unset_keepalive_if_required()
        if self.head_timer is not None:
            self.head_timer.cancel()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.lingering = True
        self.flow.resume_reading()
        self.transport.write_eof()
        self._close_later(self.limits.linger_s, self.transport.close)

    def _refuse(self) -> None:
        """Beyond `max_connections`: 503 and close, holding no descriptor for long."""
        REFUSED.add(self.limits.max_connections)
        self.transport.write(BUSY)
        self.transport.close()

    def _close_later(self, delay: float, callback: Callable[[], object]) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(delay, callback)


def protocol_class(limits: ConnectionLimits) -> type[DrainingProtocol]:
    """`DrainingProtocol` with `limits`: a class, what uvicorn's `http` setting takes."""
    return type("DrainingProtocol", (DrainingProtocol,), {"limits": limits})


def server_options(server: Server) -> dict[str, Any]:
    """The uvicorn settings both entry points share (uvicorn.run and the gunicorn worker)."""
    limits = ConnectionLimits(server.header_timeout_s, server.drain_idle_s, server.max_connections)
    # uvicorn counts the connection asking among those open: with one more, a request is
    # answered 503 when more than `max_connections` are open, as a new connection is here.
    return {"http": protocol_class(limits), "limit_concurrency": server.max_connections + 1}
