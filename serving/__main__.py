"""`python -m serving`: run the scoring service with uvicorn (workers from the config)."""

from __future__ import annotations

import os
import socket
import sys
import tempfile

from pipelines.errors import ConfigError
from serving import workers
from serving.settings import load_settings


def main() -> int:
    """Validate settings first (a bad value never binds a port), then serve."""
    workers.configure_logging()
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # One OpenMP thread per worker, set before any worker imports a model library.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    server = settings.server
    if server.workers > 1:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="fraudops-prom-"))
        if hasattr(socket, "send_fds"):  # Unix: connections balanced by the supervisor
            return workers.supervise(server.host, server.port, server.workers)
    import uvicorn

    workers.keep_heap()  # this process serves when there is one worker
    uvicorn.run(
        workers.APP,
        factory=True,
        host=server.host,
        port=server.port,
        workers=server.workers,
        log_level=workers.LOG_LEVEL,
        timeout_graceful_shutdown=workers.GRACEFUL_S,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
