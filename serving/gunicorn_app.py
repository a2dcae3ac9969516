"""Several workers on one machine: gunicorn's arbiter with uvicorn's worker class.

gunicorn forks the workers (each builds its own app: `serving.main:create_app`), replaces
one that dies, halts with exit status 3 when one cannot start (its replacement would fail
the same way), and on SIGTERM stops accepting, lets each worker finish its requests and
flush its capture (`graceful_timeout`), then exits 0. The two hooks below are the ones
gunicorn and prometheus_client document: a dead worker's live gauges are dropped from the
shared metrics, and a worker whose arbiter was killed stops instead of serving on alone.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
from typing import Any, ClassVar

from gunicorn.app.base import BaseApplication
from gunicorn.errors import HaltServer
from uvicorn_worker import UvicornWorker

from serving.protocol import server_options
from serving.settings import Server

log = logging.getLogger(__name__)

WORKER_CLASS = "serving.gunicorn_app.Worker"
PARENT_CHECK_S = 1.0


class Worker(UvicornWorker):  # type: ignore[misc]
    """uvicorn's worker class, configured the way its documentation shows (CONFIG_KWARGS):
    no access log (a line per scored transaction; /metrics counts requests). The protocol
    and connection limits one uvicorn process runs with (serving/protocol.py) are set on
    the uvicorn Config it built, before its server loads it."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {**UvicornWorker.CONFIG_KWARGS, "access_log": False}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in server_options(self.app.server).items():
            setattr(self.config, key, value)


class ScoringService(BaseApplication):  # type: ignore[misc]
    """gunicorn configured from our settings, not from its command line."""

    def __init__(self, options: dict[str, Any], server: Server) -> None:
        self.options, self.server = options, server
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from serving.main import create_app

        return create_app()


def serve(server: Server, graceful_s: float) -> int:
    """Run `server.workers` processes on `server.host:server.port` until SIGTERM or SIGINT;
    gunicorn's exit status (0, or 3 when a worker could not start)."""
    # Each worker writes its samples here and /metrics adds them up (serving/metrics.py).
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="fraudops-prom-"))
    host, port = server.host, server.port
    bind = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
    options = {
        "bind": [bind],
        "workers": server.workers,
        "worker_class": WORKER_CLASS,
        "graceful_timeout": graceful_s,
        "timeout": 60,  # a worker silent this long (a blocked event loop) is replaced
        "keepalive": 5,  # uvicorn's own default (gunicorn's is 2 s)
        "loglevel": "warning",
        "child_exit": child_exit,
        "post_fork": post_fork,
    }
    try:
        ScoringService(options, server).run()
    except SystemExit as exc:  # the arbiter exits through sys.exit
        return int(exc.code or 0)
    except HaltServer as exc:  # a second worker failed to boot while the arbiter halted
        log.error("gunicorn: %s", exc.reason)
        return int(exc.exit_status)
    return 0


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its live gauges (the model version it served) go with it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def post_fork(server: Any, worker: Any) -> None:
    """In the new worker: stop when the arbiter dies (killed: no SIGTERM passed on), as
    gunicorn's own sync worker does by watching its parent pid."""

    def watch() -> None:
        while os.getppid() == worker.ppid:
            threading.Event().wait(PARENT_CHECK_S)
        log.warning("the arbiter (pid %d) is gone: stopping this worker", worker.ppid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
