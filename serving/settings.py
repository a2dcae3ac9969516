"""Settings of the scoring service (pydantic-settings): `configs/serving.yaml`, overridden by
`FRAUDOPS_SERVING_<SECTION>__<KEY>` environment variables, overridden by keyword arguments.

Loaded once, at start-up; an invalid or unsafe value stops the service before it binds a
port, with one line naming the key.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from pipelines.config import (
    DEFAULT_PIPELINE_CONFIG,
    DEFAULT_PROJECT_CONFIG,
    Features,
    Validate,
    load_pipeline_config,
    load_project_config,
)
from pipelines.errors import ConfigError
from pipelines.schema import DatetimeRange

DEFAULT_SERVING_CONFIG = Path("configs/serving.yaml")
ENV_PREFIX = "FRAUDOPS_SERVING_"
CONFIG_ENV = "FRAUDOPS_SERVING_CONFIG"  # the YAML file (`python -m serving --config` sets it)
MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Server(_Section):
    host: str = Field(min_length=1)
    port: int = Field(ge=0, le=65535)
    workers: int = Field(ge=1, le=64)
    # Binding beyond loopback exposes an unauthenticated scoring API: say so explicitly.
    allow_remote: bool = False
    # Slow and idle clients, and the drain at SIGTERM (serving/protocol.py, ADR 0007).
    header_timeout_s: float = Field(10.0, gt=0, le=300)
    body_timeout_s: float = Field(10.0, gt=0, le=300)
    max_connections: int = Field(512, ge=1, le=100_000)
    drain_idle_s: float = Field(1.0, gt=0, le=30)

    @model_validator(mode="after")
    def _remote_needs_opt_in(self) -> Server:
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address: set server.allow_remote "
                "(FRAUDOPS_SERVING_SERVER__ALLOW_REMOTE=true) to serve beyond this machine"
            )
        return self


class ModelSection(_Section):
    alias: str = Field(min_length=1)
    poll_interval_s: float = Field(ge=0)


class Limits(_Section):
    max_batch_rows: int = Field(ge=1, le=100_000)
    max_body_bytes: int = Field(ge=1024)
    # A transaction dated more than this after the newest one the store holds is refused
    # (422): one far-future event would otherwise set "now" for every window. None: no limit.
    max_ahead_days: float | None = Field(ge=0)
    # /admin/*, per client address and worker (serving/ratelimit.py).
    admin_burst: int = Field(5, ge=1, le=1000)
    admin_per_minute: float = Field(6.0, gt=0, le=60_000)


class OnlineStore(_Section):
    backend: Literal["sqlite", "redis"]
    sqlite_path: Path
    seed_dir: Path
    timeout_s: float = Field(1.0, gt=0, le=60)  # per Redis connect and reply


class Capture(_Section):
    dir: Path
    fsync_interval_s: float = Field(gt=0)


_yaml_file: ContextVar[Path | None] = ContextVar("serving_yaml_file", default=None)


class Settings(BaseSettings):
    """Everything the service reads, validated together."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_ignore_empty=True,  # a variable left blank (`.env`) is unset
        extra="forbid",
        frozen=True,
        validate_by_name=True,
    )

    server: Server
    model: ModelSection
    limits: Limits
    online_store: OnlineStore
    capture: Capture
    # Filled by `load_settings` from configs/project.yaml and configs/pipeline.yaml:
    model_name: str = ""
    features: Features | None = None
    contract: Validate | None = None  # the `validate` stage's limits, applied to requests too
    # Secrets and shared endpoints: from their own variables (not prefixed), never the YAML.
    redis_url: str | None = Field(None, validation_alias="FRAUDOPS_REDIS_URL")
    admin_token: SecretStr | None = Field(None, validation_alias="FRAUDOPS_ADMIN_TOKEN")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, then the YAML file."""
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls, config_path())

    @model_validator(mode="after")
    def _checks(self) -> Settings:
        if self.online_store.backend == "redis" and not self.redis_url:
            raise ValueError("online_store.backend is 'redis' but FRAUDOPS_REDIS_URL is not set")
        token = self.admin_token.get_secret_value() if self.admin_token else None
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"FRAUDOPS_ADMIN_TOKEN: at least {MIN_TOKEN_CHARS} characters "
                f"(got {len(token)}); unset it to turn /admin off"
            )
        return self

    @property
    def feature_config(self) -> Features:
        assert self.features is not None
        return self.features

    @property
    def datetime_range(self) -> DatetimeRange:
        """When a transaction may have happened: `validate.min_datetime/max_datetime`."""
        assert self.contract is not None
        return DatetimeRange.of(self.contract)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def config_path() -> Path:
    """The YAML file being read: `load_settings`'s argument, FRAUDOPS_SERVING_CONFIG, or the
    default."""
    return _yaml_file.get() or Path(os.environ.get(CONFIG_ENV) or DEFAULT_SERVING_CONFIG)


@contextmanager
def _reading(path: Path | None) -> Iterator[Path]:
    token = _yaml_file.set(path)
    try:
        yield config_path()
    finally:
        _yaml_file.reset(token)


def load_settings(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings from `path` (default: FRAUDOPS_SERVING_CONFIG or configs/serving.yaml),
    the environment and dotted `overrides` (`{"server.port": 9000}`), in rising priority."""
    with _reading(path) as yaml_path:
        if not yaml_path.is_file():
            raise ConfigError(f"{yaml_path}: config file not found")
        given = _nested(overrides or {})
        pipeline = load_pipeline_config(DEFAULT_PIPELINE_CONFIG)
        try:
            return Settings(
                model_name=load_project_config(DEFAULT_PROJECT_CONFIG).registered_model_name,
                features=pipeline.features,
                contract=pipeline.validate_,
                **given,
            )
        except ValidationError as exc:
            raise ConfigError(_one_line(yaml_path, exc)) from None


def _nested(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """`{"server.port": 1}` as `{"server": {"port": 1}}`."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _one_line(path: Path, exc: ValidationError) -> str:
    """Each problem as `KEY: rule (got value)`, KEY the variable when one set the value."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        env = ENV_PREFIX + "__".join(loc).upper()
        key = env if env in os.environ else ".".join(loc) or "<root>"
        value = err.get("input")
        shown = "" if isinstance(value, dict) or not loc else f" (got {value!r})"
        message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{key}: {message}{shown}" if loc else message)
    return f"{path}: " + "; ".join(problems)
