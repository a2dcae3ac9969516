"""Several uvicorn workers, each with its own listening socket on the same port.

uvicorn's own workers share one listening socket, and whichever process wakes first accepts
every connection waiting: a client that opens a few keep-alive connections at once often
gets all of them on one worker while the other idles (8 of 8 in two of three benchmark
rounds here, halving batch throughput). With a socket per worker bound with SO_REUSEPORT,
the kernel spreads new connections over the workers by a hash of their addresses instead.

The parent process only supervises: it starts the workers, replaces one that dies (and drops
its live gauges from the shared metrics), and on SIGTERM or SIGINT passes SIGTERM on and
waits for each worker to finish its requests and flush its capture. A worker that fails to
start stops the service (its replacement would fail the same way).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

APP = "serving.main:create_app"
LOG_LEVEL = "warning"
GRACEFUL_S = 30  # a worker's time to finish its requests on SIGTERM
STARTUP_FAILURE = 3  # uvicorn's exit status for a server that could not start
RESTART_PAUSE_S = 1.0  # between restarts of a dying worker: no hot loop


def configure_logging() -> None:
    """The service's log format, in the supervisor and in each worker (spawned: fresh)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def port_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port (a plain bind: workers of another instance,
    bound with SO_REUSEPORT, make it fail too, so two services never split one port)."""
    try:
        _listening_socket(host, port, reuse_port=False).close()
    except OSError:
        return False
    return True


def _worker(host: str, port: int) -> None:  # pragma: no cover - runs in a child process
    import uvicorn

    configure_logging()
    try:
        sock = _listening_socket(host, port, reuse_port=True)
    except OSError as exc:  # taken since the supervisor looked: a restart would fail too
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        log_level=LOG_LEVEL,
        timeout_graceful_shutdown=GRACEFUL_S,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _forget_metrics_of(pid: int | None) -> None:
    """Drop a dead worker's live gauges (the model version it served) from /metrics."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def supervise(host: str, port: int, workers: int) -> int:
    """Run `workers` worker processes until SIGTERM or SIGINT; return the exit status."""
    if not port_free(host, port):
        log.error("cannot serve on %s:%d: the address is in use", host, port)
        return 1
    spawn = multiprocessing.get_context("spawn")  # no state inherited from this process
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    def start() -> BaseProcess:
        process = spawn.Process(target=_worker, args=(host, port), name="serving-worker")
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    status = 0
    while not stop.wait(0.5):
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
                processes[i] = start()
    for process in processes:
        process.terminate()  # SIGTERM: uvicorn's graceful shutdown, then the lifespan's
    for process in processes:
        process.join(GRACEFUL_S + 10)
        if process.is_alive():
            log.error("worker %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()
    return status
