"""Settings of the local stack, read once from the environment (`.env.example` lists them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import ConfigError

RUN_DIR = Path(".run")  # gitignored: logs, pid files, the servers' SQLite databases

# Variable -> default. Ports of the servers; the service's port is its own setting.
MLFLOW_PORT = "FRAUDOPS_MLFLOW_PORT"
PREFECT_PORT = "FRAUDOPS_PREFECT_PORT"
SERVING_PORT = "FRAUDOPS_SERVING_SERVER__PORT"
MLFLOW_BACKEND = "FRAUDOPS_MLFLOW_BACKEND_STORE_URI"
PREFECT_DATABASE = "PREFECT_API_DATABASE_CONNECTION_URL"  # Prefect's own setting
START_TIMEOUT = "FRAUDOPS_STACK_START_TIMEOUT_S"
STOP_TIMEOUT = "FRAUDOPS_STACK_STOP_TIMEOUT_S"


@dataclass(frozen=True)
class StackSettings:
    """Where the stack lives and which ports and stores it uses."""

    root: Path
    mlflow_port: int
    prefect_port: int
    serving_port: int
    mlflow_backend_store_uri: str
    prefect_database_url: str | None
    start_timeout_s: float
    stop_timeout_s: float

    @property
    def run_dir(self) -> Path:
        """The run folder: `logs/`, `*.pid`, `mlflow/`, `prefect/`."""
        return self.root / RUN_DIR

    @property
    def mlflow_url(self) -> str:
        """The MLflow server (UI and tracking API)."""
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def prefect_api_url(self) -> str:
        """The Prefect API (`PREFECT_API_URL`); the UI is this without `/api`."""
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def serving_url(self) -> str:
        """The scoring service."""
        return f"http://127.0.0.1:{self.serving_port}"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{name}={raw!r}: not a TCP port (1-65535)")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{name}={raw!r}: not a positive number of seconds")
    return value


def _serving_port(root: Path, env: Mapping[str, str]) -> int:
    """The port in configs/serving.yaml unless FRAUDOPS_SERVING_SERVER__PORT overrides it."""
    from serving.settings import load_settings

    if env.get(SERVING_PORT):
        return _port(env, SERVING_PORT, 0)
    return load_settings(root / "configs/serving.yaml", environ=dict(env)).server.port


def load_stack_settings(
    root: Path = Path("."), environ: Mapping[str, str] | None = None
) -> StackSettings:
    """Read and check every setting; a bad value is a `ConfigError` naming the variable."""
    env = os.environ if environ is None else environ
    root = root.resolve()
    default_backend = f"sqlite:///{root / RUN_DIR / 'mlflow' / 'mlflow.db'}"
    return StackSettings(
        root=root,
        mlflow_port=_port(env, MLFLOW_PORT, 5000),
        prefect_port=_port(env, PREFECT_PORT, 4200),
        serving_port=_serving_port(root, env),
        mlflow_backend_store_uri=env.get(MLFLOW_BACKEND) or default_backend,
        prefect_database_url=env.get(PREFECT_DATABASE) or None,
        start_timeout_s=_seconds(env, START_TIMEOUT, 180),
        stop_timeout_s=_seconds(env, STOP_TIMEOUT, 15),
    )
