"""Several uvicorn workers behind one listening socket, balanced by open connections.

uvicorn's own workers share one listening socket, and whichever process wakes first accepts
every connection waiting: a client that opens a few keep-alive connections at once often
gets all of them on one worker while the other idles (8 of 8 in two of three benchmark
rounds here, halving batch throughput). SO_REUSEPORT (a socket per worker) spreads them by a
hash of their addresses: still 6 and 2, or worse, for a third of the sets of 8.

So the supervisor accepts, and hands each connection (its file descriptor, over a Unix
socket) to the worker holding the fewest open ones; each worker counts the connections it
closes in shared memory. Keep-alive clients (a load balancer's pool, a batch job's
threads) get an even share of the workers, whatever their addresses. The hand-off costs one
message per connection, not per request.

The supervisor also replaces a worker that dies (and drops its live gauges from the shared
metrics), listens only once every worker is ready, stops the service when a worker cannot
start (its replacement would fail the same way), and on SIGTERM or SIGINT stops accepting,
passes SIGTERM on and waits for each worker to finish its requests and flush its capture.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

APP = "serving.main:create_app"
LOG_LEVEL = "warning"
GRACEFUL_S = 30  # a worker's time to finish its requests on SIGTERM
STARTUP_FAILURE = 3  # uvicorn's exit status for a server that could not start
RESTART_PAUSE_S = 1.0  # between restarts of a dying worker: no hot loop
BACKLOG = 2048  # uvicorn's default
POLL_S = 0.5  # how often the supervisor looks at its workers and at SIGTERM
HAND_OFF_TIMEOUT_S = 2.0  # a worker whose queue stays full that long is passed over


# glibc's malloc: requests above the mmap threshold get fresh pages from the kernel, and free
# memory at the top of the heap beyond the trim threshold goes back to it. A batch of 1,000
# rows allocates and frees NumPy temporaries of 0.1-1 MB, so with the defaults every request
# paid ~650 page faults (kernel time: up to a fifth of a worker's CPU). Kept in the heap,
# they cost nothing; a worker holds on to at most TRIM_THRESHOLD of freed memory.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's maximum on 64-bit systems
TRIM_THRESHOLD = 128 << 20


def keep_heap() -> bool:
    """Tune glibc's malloc as above (for this process); False where there is no mallopt."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): their defaults stay
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def configure_logging() -> None:
    """The service's log format, in the supervisor and in each worker (spawned: fresh)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port, not yet listening (OSError if the port is taken)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _Connections(set[Any]):
    """uvicorn's set of open connections, also counting in shared memory those it closes
    (the supervisor subtracts them from those it handed over)."""

    def __init__(self, closed: Any, index: int) -> None:
        super().__init__()
        self._closed, self._index = closed, index

    def discard(self, connection: Any) -> None:
        if connection in self:
            super().discard(connection)
            self._closed[self._index] += 1


class _Worker(uvicorn.Server):
    """A uvicorn server without a listening socket: it serves the connections the
    supervisor hands it over `channel` (one byte and one file descriptor each). Its own
    names are private (`__`): they cannot shadow uvicorn's."""

    def __init__(
        self, config: uvicorn.Config, channel: socket.socket, index: int, ready: Any, closed: Any
    ) -> None:
        super().__init__(config)
        self.__channel, self.__index, self.__ready = channel, index, ready
        self.server_state.connections = _Connections(closed, index)
        self.__pending: set[asyncio.Task[Any]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan (model, store, capture); no listener
        self.__channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.__channel.fileno(), self.__receive)
        self.__ready[self.__index] = 1

    def __receive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.__channel, 1, 1)
            except BlockingIOError:
                return
            if not message:  # the supervisor is gone: stop, as on SIGTERM
                loop.remove_reader(self.__channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                task = loop.create_task(self.__serve(socket.socket(fileno=fd)))
                self.__pending.add(task)
                task.add_done_callback(self.__pending.discard)

    async def __serve(self, sock: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(self.__protocol, sock)
        except OSError as exc:  # the client left before its first byte
            log.debug("connection dropped before serving: %s", exc)
            sock.close()

    def __protocol(self) -> asyncio.Protocol:
        """What uvicorn's own listener builds for each connection it accepts."""
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.__ready[self.__index] = 0
        if self.__channel.fileno() != -1:  # not closed yet
            asyncio.get_running_loop().remove_reader(self.__channel.fileno())
            self.__channel.close()  # connections not yet received close with it
        await super().shutdown(sockets=sockets)


def _worker(  # pragma: no cover - runs in a child process
    index: int, channel: socket.socket, ready: Any, closed: Any
) -> None:
    configure_logging()
    keep_heap()
    config = uvicorn.Config(
        APP, factory=True, log_level=LOG_LEVEL, timeout_graceful_shutdown=GRACEFUL_S
    )
    server = _Worker(config, channel, index, ready, closed)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _forget_metrics_of(pid: int | None) -> None:
    """Drop a dead worker's live gauges (the model version it served) from /metrics."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class _Balancer:
    """The supervisor's side: each worker's channel, and how many connections it holds."""

    def __init__(self, workers: int) -> None:
        self._context = multiprocessing.get_context("spawn")  # nothing inherited
        self.ready = self._context.RawArray("b", workers)  # set by each worker once serving
        self.closed = self._context.RawArray("q", workers)  # connections each worker closed
        self._sent = [0] * workers  # connections handed to each worker
        self._channels: list[socket.socket | None] = [None] * workers
        self._next = 0  # ties go round the workers
        self._lock = threading.Lock()  # the accepting thread against restarts

    def start(self, index: int) -> BaseProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.settimeout(HAND_OFF_TIMEOUT_S)
        with self._lock:
            old = self._channels[index]
            if old is not None:
                old.close()
            self._channels[index] = ours
            self.ready[index], self.closed[index], self._sent[index] = 0, 0, 0
        process = self._context.Process(
            target=_worker, args=(index, theirs, self.ready, self.closed), name="serving-worker"
        )
        process.start()
        theirs.close()
        return process

    def all_ready(self) -> bool:
        return all(self.ready)

    def hand_off(self, conn: socket.socket) -> None:
        """Give `conn` to the ready worker holding the fewest connections (then close ours)."""
        with conn, self._lock:
            n = len(self._sent)
            order: Sequence[int] = sorted(
                (i for i in range(n) if self.ready[i]),
                key=lambda i: (self._sent[i] - self.closed[i], (i - self._next) % n),
            )
            for i in order:
                channel = self._channels[i]
                try:
                    assert channel is not None
                    socket.send_fds(channel, [b"c"], [conn.fileno()])
                except OSError as exc:  # gone (the supervisor will replace it) or stuck
                    log.warning("worker %d did not take a connection: %s", i, exc)
                    continue
                self._sent[i] += 1
                self._next = i + 1
                return
            log.error("no worker could take a connection; closing it")

    def close(self) -> None:
        with self._lock:
            for channel in self._channels:
                if channel is not None:
                    channel.close()


def _accept(listener: socket.socket, balancer: _Balancer, stop: threading.Event) -> None:
    """Listen once every worker is ready, then hand each connection over, until `stop`."""
    while not balancer.all_ready():
        if stop.wait(0.05):
            return
    listener.listen(BACKLOG)
    listener.settimeout(POLL_S)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError as exc:  # e.g. out of file descriptors: the client retries
            log.warning("accept failed: %s", exc)
            stop.wait(0.01)
            continue
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # already reset by the client
            conn.close()
            continue
        balancer.hand_off(conn)


def supervise(host: str, port: int, workers: int) -> int:
    """Run `workers` worker processes until SIGTERM or SIGINT; return the exit status."""
    try:
        listener = _bound_socket(host, port)
    except OSError:
        log.error("cannot serve on %s:%d: the address is in use", host, port)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    balancer = _Balancer(workers)
    processes = [balancer.start(i) for i in range(workers)]
    acceptor = threading.Thread(
        target=_accept, args=(listener, balancer, stop), name="serving-accept", daemon=True
    )
    acceptor.start()
    status = 0
    while not stop.wait(POLL_S):
        for i, process in enumerate(processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %s could not start; stopping the service", process.pid)
                status = STARTUP_FAILURE
                stop.set()
                break
            log.warning("worker %s exited (%s); starting another", process.pid, process.exitcode)
            _forget_metrics_of(process.pid)
            stop.wait(RESTART_PAUSE_S)
            if not stop.is_set():
                processes[i] = balancer.start(i)
    acceptor.join()
    listener.close()  # new connections are refused from here on
    for process in processes:
        process.terminate()  # SIGTERM: uvicorn's graceful shutdown, then the lifespan's
    for process in processes:
        process.join(GRACEFUL_S + 10)
        if process.is_alive():
            log.error("worker %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()
    balancer.close()
    return status
