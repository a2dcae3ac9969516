"""Serving settings: the YAML file, the environment over it, arguments over both, and unsafe
or invalid values refused at start with one line naming the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.errors import ConfigError
from serving.settings import CONFIG_ENV, is_loopback, load_settings
from tests.conftest import MODEL_NAME, REPO_ROOT


@pytest.fixture(autouse=True)
def _repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    for name in [n for n in os.environ if n.startswith("FRAUDOPS_")]:
        monkeypatch.delenv(name)


def _one_line(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_the_yaml_file_is_read() -> None:
    settings = load_settings()
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)
    assert settings.model.alias == "champion"
    assert settings.model_name == MODEL_NAME
    assert settings.admin_token is None
    assert settings.redis_url is None
    assert settings.online_store.timeout_s == 1.0


def test_the_environment_overrides_the_file_and_arguments_override_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUDOPS_SERVING_SERVER__PORT", "9123")
    monkeypatch.setenv("FRAUDOPS_SERVING_CAPTURE__FSYNC_INTERVAL_S", "7")
    monkeypatch.setenv("FRAUDOPS_REDIS_URL", "redis://127.0.0.1:1/0")
    settings = load_settings(overrides={"capture.fsync_interval_s": 9})
    assert settings.server.port == 9123
    assert settings.server.workers == 2  # the rest of the section still comes from the file
    assert settings.capture.fsync_interval_s == 9
    assert settings.redis_url == "redis://127.0.0.1:1/0"


def test_another_file_by_argument_or_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (REPO_ROOT / "configs/serving.yaml").read_text().replace("port: 8000", "port: 8111")
    other = tmp_path / "serving.yaml"
    other.write_text(text)
    assert load_settings(other).server.port == 8111
    monkeypatch.setenv(CONFIG_ENV, str(other))
    assert load_settings().server.port == 8111
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("FRAUDOPS_SERVING_SERVER__PORT", "99999", "FRAUDOPS_SERVING_SERVER__PORT"),
        ("FRAUDOPS_SERVING_SERVER__WORKERS", "none", "FRAUDOPS_SERVING_SERVER__WORKERS"),
        ("FRAUDOPS_SERVING_SERVER__PROT", "1", "FRAUDOPS_SERVING_SERVER__PROT"),
        ("FRAUDOPS_ADMIN_TOKEN", "short", "FRAUDOPS_ADMIN_TOKEN"),
        ("FRAUDOPS_SERVING_SERVER__HOST", "0.0.0.0", "server.allow_remote"),
        ("FRAUDOPS_SERVING_ONLINE_STORE__BACKEND", "redis", "FRAUDOPS_REDIS_URL"),
        (
            "FRAUDOPS_SERVING_ONLINE_STORE__TIMEOUT_S",
            "0",
            "FRAUDOPS_SERVING_ONLINE_STORE__TIMEOUT_S",
        ),
        ("FRAUDOPS_SERVING_SERVER__HEADER_TIMEOUT_S", "0", "FRAUDOPS_SERVING_SERVER__HEADER"),
        ("FRAUDOPS_SERVING_SERVER__BODY_TIMEOUT_S", "-1", "FRAUDOPS_SERVING_SERVER__BODY"),
        ("FRAUDOPS_SERVING_SERVER__MAX_CONNECTIONS", "0", "FRAUDOPS_SERVING_SERVER__MAX"),
        ("FRAUDOPS_SERVING_SERVER__DRAIN_IDLE_S", "0", "FRAUDOPS_SERVING_SERVER__DRAIN"),
        ("FRAUDOPS_SERVING_LIMITS__ADMIN_BURST", "0", "FRAUDOPS_SERVING_LIMITS__ADMIN_BURST"),
        ("FRAUDOPS_SERVING_LIMITS__ADMIN_PER_MINUTE", "0", "FRAUDOPS_SERVING_LIMITS__ADMIN_PER"),
    ],
)
def test_invalid_or_unsafe_values_are_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert named in _one_line(exc)


def test_a_token_of_sixteen_characters_and_a_public_host_opted_in_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUDOPS_ADMIN_TOKEN", "x" * 16)
    monkeypatch.setenv("FRAUDOPS_SERVING_SERVER__HOST", "0.0.0.0")
    monkeypatch.setenv("FRAUDOPS_SERVING_SERVER__ALLOW_REMOTE", "true")
    settings = load_settings()
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "x" * 16
    assert settings.server.host == "0.0.0.0"


def test_an_empty_secret_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDOPS_ADMIN_TOKEN", "")
    monkeypatch.setenv("FRAUDOPS_REDIS_URL", "")
    settings = load_settings()
    assert settings.admin_token is None
    assert settings.redis_url is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_blank_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDOPS_SERVING_SERVER__PORT", "")
    assert load_settings().server.port == 8000
