"""The stack's settings: defaults, one variable per setting, a bad value named on one line."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import ConfigError
from stack.settings import VARIABLES, load_stack_settings
from tests.conftest import REPO_ROOT

PORT_RULE = "not a TCP port (1-65535)"
SECONDS_RULE = "not a positive number of seconds"
ARTIFACTS_RULE = "not a local folder or an s3://bucket[/prefix] URI"
RAW = ("mlflow_backend", "mlflow_artifacts")  # the variables behind two properties


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No stack variable from the shell running the tests; relative configs from the root."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(REPO_ROOT)


def test_defaults() -> None:
    s = load_stack_settings(REPO_ROOT, {})
    assert (s.root, s.run_dir) == (REPO_ROOT, REPO_ROOT / ".run")
    assert (s.mlflow_port, s.prefect_port, s.serving_port) == (5000, 4200, 8000)
    assert s.mlflow_backend_store_uri == f"sqlite:///{REPO_ROOT}/.run/mlflow/mlflow.db"
    assert s.mlflow_artifacts_destination == f"{REPO_ROOT}/.run/mlflow/artifacts"
    assert s.prefect_database_url is None
    assert (s.start_timeout_s, s.stop_timeout_s) == (180, 15)
    assert (s.mlflow_url, s.prefect_api_url, s.serving_url) == (
        "http://127.0.0.1:5000",
        "http://127.0.0.1:4200/api",
        "http://127.0.0.1:8000",
    )


def test_defaults_and_environment() -> None:
    env = {
        "FRAUDOPS_MLFLOW_PORT": "5100",
        "FRAUDOPS_PREFECT_PORT": "4300",
        "FRAUDOPS_SERVING_SERVER__PORT": "8100",
        "FRAUDOPS_MLFLOW_BACKEND_STORE_URI": "postgresql+psycopg2://u@db/mlflow",
    }
    s = load_stack_settings(REPO_ROOT, env)
    assert (s.mlflow_url, s.prefect_api_url, s.serving_url) == (
        "http://127.0.0.1:5100",
        "http://127.0.0.1:4300/api",
        "http://127.0.0.1:8100",
    )
    assert s.mlflow_backend_store_uri == "postgresql+psycopg2://u@db/mlflow"


OVERRIDES = [
    ("FRAUDOPS_MLFLOW_PORT", "5100", "mlflow_port", 5100),
    ("FRAUDOPS_PREFECT_PORT", "4300", "prefect_port", 4300),
    ("FRAUDOPS_SERVING_SERVER__PORT", "8100", "serving_port", 8100),
    (
        "FRAUDOPS_MLFLOW_BACKEND_STORE_URI",
        "postgresql+psycopg2://u@db/m",
        "mlflow_backend_store_uri",
        "postgresql+psycopg2://u@db/m",
    ),
    (
        "FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION",
        "s3://bucket/mlflow",
        "mlflow_artifacts_destination",
        "s3://bucket/mlflow",
    ),
    (
        "PREFECT_API_DATABASE_CONNECTION_URL",
        "postgresql+asyncpg://u@db/p",
        "prefect_database_url",
        "postgresql+asyncpg://u@db/p",
    ),
    ("FRAUDOPS_STACK_START_TIMEOUT_S", "30", "start_timeout_s", 30.0),
    ("FRAUDOPS_STACK_STOP_TIMEOUT_S", "2.5", "stop_timeout_s", 2.5),
]


@pytest.mark.parametrize(("name", "value", "field", "expected"), OVERRIDES)
def test_each_variable_overrides_its_setting(
    name: str, value: str, field: str, expected: Any
) -> None:
    default = load_stack_settings(REPO_ROOT, {})
    s = load_stack_settings(REPO_ROOT, {name: value})
    assert getattr(s, field) == expected != getattr(default, field)
    others = {k: v for k, v in s.model_dump().items() if k not in (field, *RAW)}
    assert others == {k: v for k, v in default.model_dump().items() if k in others}


@pytest.mark.parametrize(("name", "value", "field", "expected"), OVERRIDES)
def test_the_process_environment_is_read_when_no_mapping_is_given(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, expected: Any
) -> None:
    monkeypatch.setenv(name, value)
    assert getattr(load_stack_settings(REPO_ROOT), field) == expected
    # A mapping passed in is the whole environment: the process's is not read then (but by
    # serving's own loader, which reads configs/serving.yaml and FRAUDOPS_SERVING_* itself).
    if name != "FRAUDOPS_SERVING_SERVER__PORT":
        assert getattr(load_stack_settings(REPO_ROOT, {}), field) != expected


@pytest.mark.parametrize("name", VARIABLES)
def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    default = load_stack_settings(REPO_ROOT, {})
    assert load_stack_settings(REPO_ROOT, {name: ""}) == default
    if name != "FRAUDOPS_SERVING_SERVER__PORT":  # serving's loader reads that one itself
        monkeypatch.setenv(name, "")
        assert load_stack_settings(REPO_ROOT).model_dump() == default.model_dump()


def test_the_service_port_comes_from_serving_yaml_unless_set(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    text = (REPO_ROOT / "configs/serving.yaml").read_text()
    assert "  port: 8000\n" in text
    (tmp_path / "configs/serving.yaml").write_text(text.replace("  port: 8000\n", "  port: 8123\n"))
    assert load_stack_settings(tmp_path, {}).serving_port == 8123
    # Set, the variable wins and the YAML is not read at all.
    shutil.rmtree(tmp_path / "configs")
    assert (
        load_stack_settings(tmp_path, {"FRAUDOPS_SERVING_SERVER__PORT": "8200"}).serving_port
        == 8200
    )
    with pytest.raises(ConfigError, match="config file not found"):
        load_stack_settings(tmp_path, {})


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        *[
            (port, value, PORT_RULE)
            for port in (
                "FRAUDOPS_MLFLOW_PORT",
                "FRAUDOPS_PREFECT_PORT",
                "FRAUDOPS_SERVING_SERVER__PORT",
            )
            for value in ("x", "http", "0", "-1", "65536", "80.5")
        ],
        *[
            (timeout, value, SECONDS_RULE)
            for timeout in ("FRAUDOPS_STACK_START_TIMEOUT_S", "FRAUDOPS_STACK_STOP_TIMEOUT_S")
            for value in ("soon", "0", "-5", "nan")
        ],
        *[
            ("FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION", value, ARTIFACTS_RULE)
            for value in ("gs://bucket/mlflow", "s3://", "s3:///prefix", "http://minio:9000/b")
        ],
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_and_the_rule(
    name: str, value: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_stack_settings(REPO_ROOT, {name: value})
    assert str(raised.value) == f"{name}={value!r}: {rule}"
    assert raised.value.__cause__ is None  # no pydantic error chained to it
    assert raised.value.__suppress_context__


@pytest.mark.parametrize("value", ["/srv/mlflow", "artifacts", "s3://bucket", "s3://b/a/b"])
def test_the_artifacts_destination_is_a_folder_or_a_bucket(value: str) -> None:
    environ = {"FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION": value}
    assert load_stack_settings(REPO_ROOT, environ).mlflow_artifacts_destination == value


def test_a_bad_setting_in_the_process_environment_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUDOPS_PREFECT_PORT", "http")
    with pytest.raises(ConfigError, match=r"^FRAUDOPS_PREFECT_PORT='http': not a TCP port"):
        load_stack_settings(REPO_ROOT)


def test_several_bad_settings_are_named_on_one_line() -> None:
    env = {"FRAUDOPS_MLFLOW_PORT": "x", "FRAUDOPS_STACK_STOP_TIMEOUT_S": "never"}
    with pytest.raises(ConfigError) as raised:
        load_stack_settings(REPO_ROOT, env)
    assert str(raised.value) == (
        f"FRAUDOPS_MLFLOW_PORT='x': {PORT_RULE}; "
        f"FRAUDOPS_STACK_STOP_TIMEOUT_S='never': {SECONDS_RULE}"
    )


def test_the_cli_prints_a_bad_setting_as_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stack.__main__ import main

    monkeypatch.setenv("FRAUDOPS_MLFLOW_PORT", "x")
    assert main(["status"]) == 2
    assert capsys.readouterr().err == f"error: FRAUDOPS_MLFLOW_PORT='x': {PORT_RULE}\n"
