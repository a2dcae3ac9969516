"""`python -m serving [--host H] [--port P] [--workers N] [--config FILE]`: the scoring
service under uvicorn. Flags override configs/serving.yaml and FRAUDOPS_SERVING_* variables.

One worker is one uvicorn process: what a container runs (scale by replicas behind a load
balancer). Several (`--workers N`, one machine) run under gunicorn with uvicorn's worker
class (serving/gunicorn_app.py): it starts them, replaces one that dies, stops the service when
one cannot start, and stops them all on SIGTERM.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.errors import ConfigError
from serving.settings import CONFIG_ENV, ENV_PREFIX, load_settings

log = logging.getLogger("serving")
APP = "serving.main:create_app"
GRACEFUL_S = 30  # a worker's time to finish its requests on SIGTERM


def parser() -> argparse.ArgumentParser:
    """The command line; anything it does not know is an error (exit 2)."""
    p = argparse.ArgumentParser(
        prog="python -m serving", description="Serve the fraud model (see configs/serving.yaml)."
    )
    p.add_argument("--host", help="address to bind (server.host)")
    p.add_argument("--port", type=int, help="TCP port (server.port; 0: any free port)")
    p.add_argument("--workers", type=int, help="worker processes (server.workers)")
    p.add_argument("--config", type=Path, help="settings file (default configs/serving.yaml)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Validate settings first (a bad value never binds a port), then serve."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    flags = {f"server.{k}": getattr(args, k) for k in ("host", "port", "workers")}
    flags = {key: value for key, value in flags.items() if value is not None}
    try:
        server = load_settings(args.config, flags).server
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Each worker builds its app afresh and reads its settings from the environment: the
    # flags reach it as the variables they stand for.
    if args.config is not None:
        os.environ[CONFIG_ENV] = str(args.config)
    for dotted, value in flags.items():
        os.environ[f"{ENV_PREFIX}SERVER__{dotted.split('.')[1].upper()}"] = str(value)
    # One OpenMP thread per worker, set before any worker imports a model library.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not _port_free(server.host, server.port):
        print(
            f"error: {server.host}:{server.port}: the address is in use (another service? "
            "choose --port or FRAUDOPS_SERVING_SERVER__PORT)",
            file=sys.stderr,
        )
        return 1
    shown = f"[{server.host}]" if ":" in server.host else server.host
    log.info(
        "scoring service on http://%s:%d (%d workers; docs at /docs)",
        shown,
        server.port,
        server.workers,
    )
    if server.workers == 1:
        import uvicorn

        from serving.protocol import server_options

        uvicorn.run(
            APP,
            factory=True,
            host=server.host,
            port=server.port,
            log_level="warning",
            access_log=False,  # a line per scored transaction; /metrics counts requests
            timeout_graceful_shutdown=GRACEFUL_S,
            **server_options(server),  # the drain and the slow-client limits (ADR 0007)
        )
        return 0
    from serving.gunicorn_app import serve

    return serve(server, GRACEFUL_S)


def _port_free(host: str, port: int) -> bool:
    """Whether `host:port` can be bound now (a clear error instead of a server's retries)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


if __name__ == "__main__":
    sys.exit(main())
