"""Settings of the local stack, read once from the environment (`.env.example` lists them).

pydantic-settings reads `os.environ`; a caller that passes its own mapping (tests, a copy of
the project on other ports) gets the same fields and checks from that mapping alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipelines.errors import ConfigError

RUN_DIR = Path(".run")  # gitignored: logs, pid files, the servers' SQLite databases

# The variables. Ports of the servers; the service's port is its own setting.
MLFLOW_PORT = "FRAUDOPS_MLFLOW_PORT"
PREFECT_PORT = "FRAUDOPS_PREFECT_PORT"
SERVING_PORT = "FRAUDOPS_SERVING_SERVER__PORT"
MLFLOW_BACKEND = "FRAUDOPS_MLFLOW_BACKEND_STORE_URI"
MLFLOW_ARTIFACTS = "FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION"
PREFECT_DATABASE = "PREFECT_API_DATABASE_CONNECTION_URL"  # Prefect's own setting
START_TIMEOUT = "FRAUDOPS_STACK_START_TIMEOUT_S"
STOP_TIMEOUT = "FRAUDOPS_STACK_STOP_TIMEOUT_S"
VARIABLES = (
    MLFLOW_PORT,
    PREFECT_PORT,
    SERVING_PORT,
    MLFLOW_BACKEND,
    MLFLOW_ARTIFACTS,
    PREFECT_DATABASE,
    START_TIMEOUT,
    STOP_TIMEOUT,
)

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]
ARTIFACTS_RULE = "not a local folder or an s3://bucket[/prefix] URI"


def _artifacts_destination(value: str) -> str:
    """A local folder, or a bucket (and prefix) on S3 or any S3-compatible endpoint."""
    parts = urlsplit(value)
    if "://" in value and (parts.scheme != "s3" or not parts.netloc):
        raise ValueError(ARTIFACTS_RULE)
    return value


ArtifactsDestination = Annotated[str, AfterValidator(_artifacts_destination)]
RULES = {
    MLFLOW_PORT: "not a TCP port (1-65535)",
    PREFECT_PORT: "not a TCP port (1-65535)",
    SERVING_PORT: "not a TCP port (1-65535)",
    START_TIMEOUT: "not a positive number of seconds",
    STOP_TIMEOUT: "not a positive number of seconds",
    MLFLOW_ARTIFACTS: ARTIFACTS_RULE,
}


class StackSettings(BaseSettings):
    """Where the stack lives and which ports and stores it uses."""

    # An empty variable counts as unset, as it always has for these names.
    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, env_ignore_empty=True)

    root: Path
    mlflow_port: Port = Field(5000, validation_alias=MLFLOW_PORT)
    prefect_port: Port = Field(4200, validation_alias=PREFECT_PORT)
    serving_port: Port = Field(validation_alias=SERVING_PORT)  # else configs/serving.yaml's
    mlflow_backend: str | None = Field(None, validation_alias=MLFLOW_BACKEND)
    # Where the MLflow server keeps artifacts (it proxies them: clients need no credentials).
    mlflow_artifacts: ArtifactsDestination | None = Field(None, validation_alias=MLFLOW_ARTIFACTS)
    prefect_database_url: str | None = Field(None, validation_alias=PREFECT_DATABASE)
    start_timeout_s: Seconds = Field(180, validation_alias=START_TIMEOUT)
    stop_timeout_s: Seconds = Field(15, validation_alias=STOP_TIMEOUT)

    @property
    def run_dir(self) -> Path:
        """The run folder: `logs/`, `*.pid`, `mlflow/`, `prefect/`."""
        return self.root / RUN_DIR

    @property
    def mlflow_backend_store_uri(self) -> str:
        """MLflow's backend store: the variable, else a SQLite file in the run folder."""
        return self.mlflow_backend or f"sqlite:///{self.run_dir / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifacts_destination(self) -> str:
        """MLflow's artifact store: the variable (e.g. `s3://bucket/mlflow`; the endpoint and
        credentials from `MLFLOW_S3_ENDPOINT_URL` and `AWS_*`), else a folder in the run folder."""
        return self.mlflow_artifacts or str(self.run_dir / "mlflow" / "artifacts")

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


class _GivenStackSettings(StackSettings):
    """The same settings from the values passed in only: `os.environ` is not read."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _one_line(exc: ValidationError) -> str:
    """`NAME='value': rule` for each bad variable, on one line."""
    found = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "stack settings"
        found.append(f"{name}={error.get('input')!r}: {RULES.get(name, error['msg'])}")
    return "; ".join(found)


def _serving_port(root: Path) -> int:
    """The service's port in configs/serving.yaml (FRAUDOPS_SERVING_SERVER__PORT is unset)."""
    from serving.settings import load_settings  # the stack sits above serving; only here

    return load_settings(root / "configs/serving.yaml").server.port


def load_stack_settings(
    root: Path = Path("."), environ: Mapping[str, str] | None = None
) -> StackSettings:
    """Read and check every setting, from `environ` if given, else from the environment; a
    bad value is a one-line `ConfigError` naming the variable and the rule."""
    env = os.environ if environ is None else environ
    root = root.resolve()
    values: dict[str, Any] = {"root": root}
    if not env.get(SERVING_PORT):
        values[SERVING_PORT] = _serving_port(root)
    try:
        if environ is None:
            return StackSettings(**values)
        values.update({name: env[name] for name in VARIABLES if env.get(name)})
        return _GivenStackSettings(**values)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
