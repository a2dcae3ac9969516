"""The four services of the local stack: how each starts, where it listens, when it is ready.

Every service binds 127.0.0.1 and runs with telemetry off.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from pipelines.flows.deployments import worker_online
from stack.settings import (
    MLFLOW_PORT,
    PREFECT_PORT,
    SERVING_PORT,
    StackSettings,
)

WORKER_NAME = "fraudops-worker"
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
}


@dataclass(frozen=True)
class Service:
    """One process of the stack."""

    name: str
    title: str
    argv: list[str]
    env: dict[str, str]
    healthy: Callable[[], bool]
    url: str = ""
    port: int | None = None
    port_variable: str = ""


def http_ok(url: str) -> bool:
    """True if GET `url` answers 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _bin(name: str) -> str:
    return str(os.path.join(os.path.dirname(sys.executable), name))


def base_env(s: StackSettings) -> dict[str, str]:
    """The caller's environment, telemetry off, Prefect's state kept in the run folder."""
    env = {**os.environ, **TELEMETRY_OFF, "PREFECT_HOME": str(s.run_dir / "prefect")}
    env["PREFECT_API_URL"] = s.prefect_api_url
    env["MLFLOW_TRACKING_URI"] = s.mlflow_url
    return env


def services(s: StackSettings, pool: str) -> list[Service]:
    """The stack: the servers first, then the worker (needs Prefect) and the service (MLflow)."""
    env = base_env(s)
    mlflow = Service(
        "mlflow",
        "MLflow server",
        [
            *(_bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(s.mlflow_port)),
            *("--workers", "1", "--backend-store-uri", s.mlflow_backend_store_uri),
            *("--serve-artifacts", "--artifacts-destination", s.mlflow_artifacts_destination),
        ],
        env,
        partial(http_ok, f"{s.mlflow_url}/health"),
        s.mlflow_url,
        s.mlflow_port,
        MLFLOW_PORT,
    )
    prefect_env = dict(env)
    if s.prefect_database_url:
        prefect_env["PREFECT_API_DATABASE_CONNECTION_URL"] = s.prefect_database_url
    prefect = Service(
        "prefect",
        "Prefect server",
        [_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(s.prefect_port)],
        prefect_env,
        partial(http_ok, f"{s.prefect_api_url}/health"),
        s.prefect_api_url.removesuffix("/api"),
        s.prefect_port,
        PREFECT_PORT,
    )
    worker = Service(
        "worker",
        f"Prefect worker (pool {pool})",
        [
            *(_bin("prefect"), "worker", "start", "--pool", pool, "--type", "process"),
            *("--name", WORKER_NAME),
        ],
        env,
        partial(worker_online, s.prefect_api_url, pool, WORKER_NAME),
    )
    serving_env = {
        **env,
        "FRAUDOPS_SERVING_SERVER__HOST": "127.0.0.1",
        SERVING_PORT: str(s.serving_port),
    }
    serving = Service(
        "serving",
        "Scoring service",
        [sys.executable, "-m", "serving"],
        serving_env,
        partial(http_ok, f"{s.serving_url}/health"),
        s.serving_url,
        s.serving_port,
        SERVING_PORT,
    )
    return [mlflow, prefect, worker, serving]
