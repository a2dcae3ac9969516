"""Settings of the scoring service: `configs/serving.yaml`, overridable by the environment.

Loaded once, at start-up; an invalid value stops the service before it binds a port.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from pipelines.config import (
    DEFAULT_PIPELINE_CONFIG,
    DEFAULT_PROJECT_CONFIG,
    Features,
    apply_overrides,
    format_validation_error,
    load_pipeline_config,
    load_project_config,
)
from pipelines.errors import ConfigError

DEFAULT_SERVING_CONFIG = Path("configs/serving.yaml")
ENV_PREFIX = "FRAUDOPS_SERVING_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Server(_Section):
    host: str
    port: int = Field(ge=0, le=65535)
    workers: int = Field(ge=1, le=64)


class ModelSection(_Section):
    alias: str = Field(min_length=1)
    poll_interval_s: float = Field(ge=0)


class Limits(_Section):
    max_batch_rows: int = Field(ge=1, le=100_000)
    max_body_bytes: int = Field(ge=1024)


class OnlineStore(_Section):
    backend: Literal["sqlite", "redis"]
    sqlite_path: Path
    seed_dir: Path


class Capture(_Section):
    dir: Path
    queue_rows: int = Field(ge=1)
    flush_rows: int = Field(ge=1)
    flush_interval_s: float = Field(gt=0)


class Settings(_Section):
    """Everything the service reads, validated together."""

    server: Server
    model: ModelSection
    limits: Limits
    online_store: OnlineStore
    capture: Capture
    # Filled from configs/project.yaml, configs/pipeline.yaml and the environment:
    model_name: str = ""
    features: Features | None = None
    redis_url: str | None = None
    admin_token: SecretStr | None = None

    @model_validator(mode="after")
    def _redis_needs_url(self) -> Settings:
        if self.online_store.backend == "redis" and not self.redis_url:
            raise ValueError("online_store.backend is 'redis' but FRAUDOPS_REDIS_URL is not set")
        return self

    @property
    def feature_config(self) -> Features:
        assert self.features is not None
        return self.features


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX):
            dotted = key[len(ENV_PREFIX) :].lower().replace("__", ".")
            out[dotted] = yaml.safe_load(value)
    return out


def load_settings(
    path: Path = DEFAULT_SERVING_CONFIG,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Read the YAML, apply FRAUDOPS_SERVING_* variables, then dotted `overrides`; validate."""
    env = dict(os.environ if environ is None else environ)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    data = apply_overrides(data, {**_env_overrides(env), **(overrides or {})})
    token = env.get("FRAUDOPS_ADMIN_TOKEN") or None
    data.update(
        model_name=load_project_config(DEFAULT_PROJECT_CONFIG).registered_model_name,
        features=load_pipeline_config(DEFAULT_PIPELINE_CONFIG).features,
        redis_url=env.get("FRAUDOPS_REDIS_URL") or None,
        admin_token=token,
    )
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
