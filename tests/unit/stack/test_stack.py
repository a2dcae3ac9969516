"""The stack's services and the deployments it makes: contracts checked without servers;
and its place in the layers: it imports `pipelines` and `serving`, nothing imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from pipelines.errors import ConfigError
from pipelines.flows.deployments import plan
from stack.services import services
from stack.settings import load_stack_settings
from tests.conftest import REPO_ROOT


def test_every_service_binds_loopback_with_telemetry_off() -> None:
    stack = services(load_stack_settings(REPO_ROOT, {}), "pool")
    assert [s.name for s in stack] == ["mlflow", "prefect", "worker", "serving"]
    for service in stack:
        assert service.env["DO_NOT_TRACK"] == "1"
        assert service.env["MLFLOW_DISABLE_TELEMETRY"] == "true"
        assert service.env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
        assert service.env["DVC_NO_ANALYTICS"] == "1"
    mlflow, prefect, _, serving = stack
    assert "--host" in mlflow.argv
    assert mlflow.argv[mlflow.argv.index("--host") + 1] == "127.0.0.1"
    assert mlflow.argv[mlflow.argv.index("--workers") + 1] == "1"
    assert "--serve-artifacts" in mlflow.argv
    assert prefect.argv[prefect.argv.index("--host") + 1] == "127.0.0.1"
    assert serving.env["FRAUDOPS_SERVING_SERVER__HOST"] == "127.0.0.1"


def test_prefect_yaml_declares_the_four_deployments() -> None:
    config = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    found = {(d["entrypoint"], d["name"]): d for d in config["deployments"]}
    assert set(found) == {
        ("pipelines/flows/training.py:lifecycle_flow", "local"),
        ("pipelines/flows/training.py:training_flow", "local"),
        ("pipelines/flows/scoring.py:score_flow", "batch"),
        ("monitoring/flows.py:monitoring_flow", "hourly"),
    }
    for d in found.values():
        assert d["work_pool"]["name"] == "fraudops-process"
        assert set(d["parameters"]) == {"config", "overrides"}  # a path, never the config
        assert Path(d["parameters"]["config"]).suffix == ".yaml"
    assert found[("monitoring/flows.py:monitoring_flow", "hourly")]["schedules"] == [
        {"cron": "0 * * * *", "timezone": "UTC"}
    ]


def test_plan_skips_deployments_whose_entrypoint_is_missing(tmp_path: Path) -> None:
    (tmp_path / "pipelines/flows").mkdir(parents=True)
    (tmp_path / "pipelines/flows/training.py").write_text("")
    (tmp_path / "prefect.yaml").write_text((REPO_ROOT / "prefect.yaml").read_text())
    chosen = plan(tmp_path)
    assert chosen.pool == "fraudops-process"
    assert len(chosen.names) == 2
    assert chosen.skipped == [
        "pipelines/flows/scoring.py:score_flow (batch)",
        "monitoring/flows.py:monitoring_flow (hourly)",
    ]
    assert [d["name"] for d in chosen.config["deployments"]] == ["local", "local"]
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring/flows.py").write_text("")
    (tmp_path / "pipelines/flows/scoring.py").write_text("")
    assert plan(tmp_path).skipped == []


@pytest.mark.parametrize(
    "text",
    ["deployments: [{name: x}]", "deployments: [{name: x, work_pool: {name: p}}]", "[", "{}"],
)
def test_plan_refuses_a_broken_prefect_yaml(tmp_path: Path, text: str) -> None:
    (tmp_path / "prefect.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"prefect\.yaml: not a readable list of deployments"):
        plan(tmp_path)


@pytest.mark.parametrize("package", ["pipelines", "serving", "monitoring"])
def test_no_package_below_the_stack_imports_it(package: str) -> None:
    found = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [
                f"{path.relative_to(REPO_ROOT)}: {n}" for n in names if n.split(".")[0] == "stack"
            ]
    assert found == []
