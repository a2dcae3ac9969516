"""The workers' HTTP protocol (serving/protocol.py), driven in process through a fake
transport: the drain at shutdown, the header timeout, the connection cap; and the uvicorn
internals it overrides, which must still be there (a new uvicorn fails here first).

Timers are set to a millisecond and the test sleeps longer: asyncio runs due timers in the
order they fall due, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from serving.protocol import (
    DROPPED,
    REFUSED,
    ConnectionLimits,
    DrainingProtocol,
    protocol_class,
    server_options,
)
from serving.settings import Server

REQUEST = b"GET /x HTTP/1.1\r\nHost: test\r\n\r\n"
SOON = 0.001  # a timer that is due at once
NEVER = 3600.0


class Transport(asyncio.Transport):
    """What the protocol wrote, and whether it half-closed (FIN) or closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written, self.eof, self.closed = bytearray(), False, False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        assert not self.eof, "written after FIN"
        self.written += data

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def half_closed(self) -> bool:
        """FIN sent, still reading."""
        return self.eof and not self.closed

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def connect(
    limits: ConnectionLimits, state: ServerState | None = None
) -> tuple[DrainingProtocol, Transport]:
    config = Config(app=ok, http=protocol_class(limits), proxy_headers=False)
    config.load()
    cls = config.http_protocol_class
    assert issubclass(cls, DrainingProtocol)
    protocol = cls(config=config, server_state=state or ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


async def settle() -> None:
    await asyncio.sleep(0.05)  # the app's task runs, timers at SOON fire


def test_an_idle_connection_at_shutdown_answers_its_next_request_then_closes() -> None:
    async def test() -> None:
        protocol, transport = connect(ConnectionLimits(NEVER, drain_idle_s=NEVER))
        protocol.data_received(REQUEST)
        await settle()
        assert b"connection: close" not in bytes(transport.written)
        protocol.shutdown()
        assert not transport.closed  # uvicorn would close it here
        assert not transport.eof
        transport.written.clear()
        protocol.data_received(REQUEST)
        await settle()
        assert transport.written.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in bytes(transport.written)
        assert transport.closed

    run(test)


def test_a_quiet_connection_at_shutdown_is_half_closed_reads_on_then_closes() -> None:
    async def test() -> None:
        protocol, transport = connect(ConnectionLimits(NEVER, drain_idle_s=SOON, linger_s=NEVER))
        protocol.shutdown()
        await settle()
        assert transport.half_closed()
        dropped = DROPPED.count
        protocol.data_received(REQUEST)  # too late to answer: read and dropped
        protocol.data_received(REQUEST)
        await settle()
        assert transport.written == b""
        assert DROPPED.count == dropped + 1  # counted once a connection
        assert protocol.eof_received() is None  # uvicorn's: the transport closes on EOF

    run(test)


def test_a_lingering_connection_is_closed_after_linger_s() -> None:
    async def test() -> None:
        protocol, transport = connect(ConnectionLimits(NEVER, drain_idle_s=SOON, linger_s=SOON))
        protocol.shutdown()
        await settle()
        assert transport.eof
        assert transport.closed

    run(test)


def test_a_request_in_flight_at_shutdown_is_answered_with_connection_close() -> None:
    gate = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()
        await ok(scope, receive, send)

    async def test() -> None:
        protocol, transport = connect(ConnectionLimits(NEVER, drain_idle_s=SOON))
        protocol.app = slow
        protocol.data_received(REQUEST)
        await settle()
        protocol.shutdown()
        gate.set()
        await settle()
        assert transport.written.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in bytes(transport.written)

    run(test)


@pytest.mark.parametrize(
    ("sent", "answer"), [(b"GET /x HTTP/1.1\r\nHo", b"HTTP/1.1 408"), (b"", b"")]
)
def test_a_head_not_complete_in_time_gets_408_and_a_clean_close(sent: bytes, answer: bytes) -> None:
    async def test() -> None:
        protocol, transport = connect(ConnectionLimits(header_timeout_s=SOON, linger_s=NEVER))
        protocol.data_received(sent)
        await settle()
        assert transport.written.startswith(answer)
        assert transport.half_closed()

    run(test)


def test_a_connection_already_closing_at_shutdown_keeps_its_linger_timer() -> None:
    async def test() -> None:
        protocol, transport = connect(ConnectionLimits(SOON, drain_idle_s=NEVER, linger_s=NEVER))
        await settle()
        assert transport.half_closed()  # the header timeout: lingering
        linger = protocol.close_timer
        protocol.shutdown()
        assert protocol.close_timer is linger
        assert linger is not None
        assert not linger.cancelled()
        protocol.connection_lost(None)

    run(test)


def test_the_header_timer_stops_at_a_complete_head_and_restarts_after_each_answer() -> None:
    async def test() -> None:
        protocol, _ = connect(ConnectionLimits(header_timeout_s=NEVER))
        for _ in range(3):
            armed = protocol.head_timer
            assert armed is not None
            protocol.data_received(REQUEST)
            assert armed.cancelled()
            await settle()
            assert protocol.head_timer is not armed
            assert not protocol.head_timer.cancelled()
        protocol.connection_lost(None)

    run(test)


def test_a_connection_beyond_max_connections_is_answered_503_and_closed() -> None:
    async def test() -> None:
        state = ServerState()
        refused = REFUSED.count
        first, _ = connect(ConnectionLimits(max_connections=1), state)
        _, transport = connect(ConnectionLimits(max_connections=1), state)
        assert transport.written.startswith(b"HTTP/1.1 503")
        assert transport.closed
        assert REFUSED.count == refused + 1
        first.connection_lost(None)

    run(test)


def test_the_keep_alive_timeout_closes_cleanly() -> None:
    async def test() -> None:
        protocol, transport = connect(ConnectionLimits(NEVER, linger_s=NEVER))
        protocol.timeout_keep_alive_handler()
        assert transport.half_closed()

    run(test)


def test_server_options_bind_the_settings() -> None:
    server = Server(host="127.0.0.1", port=0, workers=1, header_timeout_s=3, max_connections=7)
    options = server_options(server)
    limits = options["http"].limits
    assert (limits.header_timeout_s, limits.max_connections) == (3, 7)
    assert options["limit_concurrency"] == 8


# What the subclass relies on in uvicorn (pyproject.toml bounds uvicorn below the next minor).
OVERRIDDEN = [
    "connection_made",
    "connection_lost",
    "data_received",
    "eof_received",
    "on_message_begin",
    "on_headers_complete",
    "on_response_complete",
    "shutdown",
    "timeout_keep_alive_handler",
]


def test_the_uvicorn_internals_it_overrides_are_still_there() -> None:
    assert uvicorn.__version__.startswith("0.54."), "re-check serving/protocol.py, then the pin"
    assert AutoHTTPProtocol is HttpToolsProtocol  # what "auto" would run: the same parser
    for name in [*OVERRIDDEN, "_unset_keepalive_if_required"]:
        assert callable(getattr(HttpToolsProtocol, name, None)), name
    assert list(inspect.signature(HttpToolsProtocol.shutdown).parameters) == ["self"]
    assert "self.connections.add(self)" in inspect.getsource(HttpToolsProtocol.connection_made)
    shutdown = inspect.getsource(HttpToolsProtocol.shutdown)
    assert "self.cycle.keep_alive = False" in shutdown
    cycle = inspect.getsource(RequestResponseCycle)
    assert "if not self.keep_alive:\n                    self.transport.close()" in cycle
    assert "self.on_response()" in cycle

    async def test() -> None:
        protocol, _ = connect(ConnectionLimits())
        for attribute in ("cycle", "pipeline", "connections", "flow", "loop", "transport"):
            assert hasattr(protocol, attribute), attribute
        protocol.data_received(REQUEST)
        assert isinstance(protocol.cycle, RequestResponseCycle)
        assert {"keep_alive", "response_complete"} <= vars(protocol.cycle).keys()
        protocol.connection_lost(None)

    run(test)


def test_the_gunicorn_worker_can_still_set_the_config_it_built() -> None:
    """serving/gunicorn_app.py sets `http` and `limit_concurrency` on the Config that
    uvicorn_worker builds in `__init__` and loads only when the worker serves."""
    import uvicorn_worker
    from uvicorn_worker import UvicornWorker

    assert uvicorn_worker.__version__.startswith("0.4."), "re-check serving/gunicorn_app.py"
    assert "self.config = Config(**config_kwargs)" in inspect.getsource(UvicornWorker.__init__)
    assert "Server(config=self.config)" in inspect.getsource(UvicornWorker._serve)
    assert "self.http_protocol_class = self.http" in inspect.getsource(Config.load)
    config = Config(app=ok)
    config.http, config.limit_concurrency = protocol_class(ConnectionLimits()), 9
    config.load()
    assert issubclass(config.http_protocol_class, DrainingProtocol)
