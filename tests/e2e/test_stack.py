"""The README's "Operate it: make up" path, walked as a user walks it: `make up`, a Prefect
deployment run, the run in the Prefect API and MLflow, the new champion in the scoring
service, MLflow down during a run, `make down` leaving no process behind."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from typing import Any

import pytest
from mlflow import MlflowClient

from pipelines.flows.deployments import plan
from tests.conftest import MODEL_NAME
from tests.e2e.conftest import TINY_RUN, Stack, wait_for
from tests.e2e.postgres import throwaway_cluster
from tests.integration.test_serving_lifecycle import TX

pytestmark = pytest.mark.e2e

MODEL = MODEL_NAME


def _http(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def flow_runs(stack: Stack, flow: str) -> list[dict[str, Any]]:
    """The runs of `flow` started from a deployment, as the Prefect API lists them, newest
    first (the lifecycle's subflow runs have no deployment)."""
    body = {
        "flows": {"name": {"any_": [flow]}},
        "flow_runs": {"deployment_id": {"is_null_": False}},
        "sort": "EXPECTED_START_TIME_DESC",
    }
    return list(_http(f"{stack.prefect_api}/flow_runs/filter", body))


def registry(stack: Stack) -> list[tuple[int, tuple[str, ...]]]:
    """Every version of the model with its aliases, as the MLflow server lists them."""
    client = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    versions = client.search_model_versions(f"name = '{MODEL}'")
    return sorted((int(v.version), tuple(sorted(v.aliases))) for v in versions)


def check_mlflow(stack: Stack) -> int:
    """The training run with metrics and served artifacts, a version with its aliases."""
    client = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    experiment = client.get_experiment_by_name("fraudops")
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # served, not a path
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.metrics["test.average_precision"] > 0.4
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"evaluate"}
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.run_id == run.info.run_id
    assert set(champion.aliases) == {"champion", "challenger"}
    assert list((stack.root / ".run/mlflow/artifacts").rglob("model.skops"))
    return int(champion.version)


def check_serving(stack: Stack, version: int) -> None:
    """The service follows the new champion and scores with it."""
    wait_for(
        lambda: _http(f"{stack.serving_url}/ready").get("model_version") == version,
        60,
        f"the scoring service to load version {version}",
    )
    score = _http(f"{stack.serving_url}/v1/score", TX)
    assert score["model_version"] == version
    assert 0.0 <= score["fraud_probability"] <= 1.0


def test_make_up_deployment_run_mlflow_serving_make_down(make_stack: Any) -> None:
    stack: Stack = make_stack()
    up = stack.make("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "the stack is up" in up.stdout
    assert f"export PREFECT_API_URL={stack.prefect_api}" in up.stdout
    stack.record_processes()
    assert stack.listening_on() == {"127.0.0.1"}
    again = stack.make("up")
    assert again.returncode == 0
    assert "the stack is already up" in again.stdout

    run = stack.prefect(
        "deployment", "run", "fraud-lifecycle/local", "--watch", "--params", TINY_RUN
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Completed" in run.stdout
    runs = flow_runs(stack, "fraud-lifecycle")
    assert [r["state"]["type"] for r in runs] == ["COMPLETED"]
    version = check_mlflow(stack)
    check_serving(stack, version)

    _mlflow_down_fails_cleanly_then_recovers(stack)

    down = stack.make("down")
    assert down.returncode == 0
    assert "stopped:" in down.stdout
    assert stack.left_behind() == []
    assert not list((stack.root / ".run").glob("*.pid"))
    status = stack.make("status")
    assert status.stdout.count("stopped") == 4


def _mlflow_down_fails_cleanly_then_recovers(stack: Stack) -> None:
    before = registry(stack)
    mlflow = next(p for p in stack.seen if p.pid == _pid(stack, "mlflow"))
    for proc in [mlflow, *mlflow.children(recursive=True)]:
        proc.kill()
    # A run's overrides belong to that run: these runs name the same tiny data again.
    failed = stack.prefect(
        "deployment", "run", "fraud-training/local", "--watch", "--params", TINY_RUN
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    last = flow_runs(stack, "fraud-training")[0]
    assert last["state"]["type"] == "FAILED"
    assert f"MLflow at {stack.mlflow_url}" in last["state"]["message"]

    restarted = stack.make("up")  # starts only what is missing: the MLflow server
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "starting MLflow server" in restarted.stdout
    assert "Prefect server" not in restarted.stdout.split("the stack is up")[0]
    assert registry(stack) == before  # the failed run changed nothing
    stack.record_processes()
    rerun = stack.prefect(
        "deployment", "run", "fraud-training/local", "--watch", "--params", TINY_RUN
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert registry(stack) == before  # same data and code: the version is reused
    assert run_git(stack, "status", "--porcelain", "configs/") == ""  # overrides: the run's only


def run_git(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=stack.root, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _pid(stack: Stack, name: str) -> int:
    return int(json.loads((stack.root / ".run" / f"{name}.pid").read_text())["pid"])


def test_the_same_path_on_postgresql(make_stack: Any) -> None:
    """MLflow's backend store and the Prefect database on PostgreSQL, set only through the
    environment; the artifacts stay with the MLflow server."""
    with throwaway_cluster() as pg:
        pg.create_database("mlflow")
        pg.create_database("prefect")
        stack: Stack = make_stack(
            {
                "FRAUDOPS_MLFLOW_BACKEND_STORE_URI": pg.url("mlflow"),
                "PREFECT_API_DATABASE_CONNECTION_URL": pg.url("prefect", "postgresql+asyncpg"),
            }
        )
        up = stack.make("up")
        assert up.returncode == 0, up.stdout + up.stderr
        stack.record_processes()
        assert stack.listening_on() == {"127.0.0.1"}
        run = stack.prefect(
            "deployment", "run", "fraud-lifecycle/local", "--watch", "--params", TINY_RUN
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert [r["state"]["type"] for r in flow_runs(stack, "fraud-lifecycle")] == ["COMPLETED"]
        version = check_mlflow(stack)
        check_serving(stack, version)
        assert pg.count("mlflow", "model_versions") == 1
        assert pg.count("prefect", "deployment") == len(plan(stack.root).names)
        assert pg.count("prefect", "flow_run") >= 3  # the lifecycle and its two subflows
        assert not (stack.root / ".run/mlflow/mlflow.db").exists()
        assert not (stack.root / ".run/prefect/prefect.db").exists()
        down = stack.make("down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert stack.left_behind() == []
