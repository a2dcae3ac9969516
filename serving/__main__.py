"""`python -m serving`: run the scoring service with uvicorn (workers from the config)."""

from __future__ import annotations

import logging
import os
import sys
import tempfile

from pipelines.errors import ConfigError
from serving.settings import load_settings


def main() -> int:
    """Validate settings first (a bad value never binds a port), then serve."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # One OpenMP thread per worker, set before any worker imports a model library.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if settings.server.workers > 1:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="fraudops-prom-"))
        # The workers share one listening socket; by default whichever wakes first accepts
        # every pending connection, so a client with two keep-alive connections often keeps
        # one worker busy and the other idle. libuv (uvloop) then accepts one at a time.
        os.environ.setdefault("UV_TCP_SINGLE_ACCEPT", "1")
    import uvicorn

    uvicorn.run(
        "serving.main:create_app",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        log_level="warning",
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
