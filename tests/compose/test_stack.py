"""docker/compose.yaml run for real (podman-compose): the stack comes up healthy, a
`fraud-lifecycle` deployment run inside it completes, both scoring replicas and the balancer
in front of them serve the new champion, a transaction scored through the balancer counts
in the features both replicas compute (one Redis), and `down` leaves nothing behind.

The tests share one stack and run in file order (each needs the one before)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from tests.captures import read_predictions
from tests.compose.conftest import Stack
from tests.conftest import MODEL_NAME
from tests.container.conftest import sh
from tests.e2e.conftest import TINY_RUN

pytestmark = pytest.mark.compose
log = logging.getLogger(__name__)

REPLICAS = ("SERVING_A_PORT", "SERVING_B_PORT")
CUSTOMER = 900_001  # not in the simulated data: its windows hold only what the test scores


def _wait_for(what: str, seconds: float, check: Any) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if (got := check()) is not None:
                return got
        except httpx.TransportError:
            pass
        time.sleep(2)
    pytest.fail(f"{what}: not within {seconds:.0f} s")


def test_the_stack_comes_up_healthy(stack: Stack) -> None:
    started = time.monotonic()
    up = stack.compose("up", "--detach", "--no-build", timeout=300)
    started_in = time.monotonic() - started
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert set(stack.containers()) == {
        "postgres", "redis", "mlflow", "prefect-server", "prefect-worker",
        "serving-a", "serving-b", "balancer",
    }  # fmt: skip
    waited = stack.wait_healthy(timeout=420)
    log.warning("compose: up in %.0f s, healthy %.0f s later", started_in, waited)
    assert httpx.get(f"{stack.url('MLFLOW_PORT')}/health", timeout=5).status_code == 200
    assert httpx.get(f"{stack.url('SERVING_PORT')}/health", timeout=5).status_code == 200


def test_a_lifecycle_deployment_run_completes_in_the_stack(stack: Stack) -> None:
    env = {**stack.env, "PREFECT_API_URL": f"{stack.url('PREFECT_PORT')}/api"}
    # The worker registers prefect.yaml's deployments at start-up (docker/worker.sh).
    prefect = str(Path(sys.executable).parent / "prefect")
    _wait_for("the deployment fraud-lifecycle/local", 120, lambda: _deployment(prefect, env))
    run = subprocess.run(
        [prefect, "deployment", "run", "fraud-lifecycle/local", "--params", TINY_RUN,
         "--watch", "--watch-timeout", "900"],
        env=env, capture_output=True, text=True, timeout=960, check=False,
    )  # fmt: skip
    worker = stack.logs({"prefect-worker": stack.containers()["prefect-worker"]})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:] + worker
    assert "Completed" in run.stdout
    client = MlflowClient(tracking_uri=stack.url("MLFLOW_PORT"))
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert int(champion.version) == 1
    # The registry and the flow runs are in the PostgreSQL container.
    assert _count(stack, "mlflow", "model_versions") == 1
    assert _count(stack, "prefect", "flow_run") >= 3  # the lifecycle and its two subflows


def _count(stack: Stack, database: str, table: str) -> int:
    out = sh(
        *stack.podman, "exec", stack.containers()["postgres"], "psql", "-h", "/tmp",
        "-p", str(stack.port("POSTGRES_PORT")), "-U", "fraudops", "-d", database, "-tAc",
        f"SELECT count(*) FROM {table}",
    )  # fmt: skip
    return int(out.strip())


def _deployment(prefect: str, env: dict[str, str]) -> bool | None:
    done = subprocess.run(
        [prefect, "deployment", "inspect", "fraud-lifecycle/local"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return True if done.returncode == 0 else None


def test_both_replicas_and_the_balancer_serve_the_champion(stack: Stack) -> None:
    for port in (*REPLICAS, "SERVING_PORT"):
        url = f"{stack.url(port)}/v1/model"
        info = _wait_for(f"{url} serving version 1", 90, lambda url=url: _model(url))
        assert info["alias"] == "champion"
    # Round robin: the balancer's answers come from both replicas.
    upstreams = {
        httpx.get(f"{stack.url('SERVING_PORT')}/v1/model", timeout=5).headers["X-Upstream"]
        for _ in range(6)
    }
    assert upstreams == {f"127.0.0.1:{stack.port(p)}" for p in REPLICAS}


def _model(url: str) -> dict[str, Any] | None:
    answer = httpx.get(url, timeout=5)
    info: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
    return info if info.get("version") == 1 else None


def test_features_scored_through_the_balancer_are_seen_by_both_replicas(stack: Stack) -> None:
    """One transaction through the balancer, one to each replica directly, the same customer
    within a day: each replica's window counts every earlier one, wherever it was scored."""
    targets = ["SERVING_PORT", *REPLICAS]
    ids = [61_000_001 + i for i in range(len(targets))]
    for i, (port, tx_id) in enumerate(zip(targets, ids, strict=True)):
        tx = {
            "transaction_id": tx_id, "tx_datetime": f"2018-05-11T12:{30 + i}:05",
            "customer_id": CUSTOMER, "terminal_id": 11, "tx_amount": 20.0 + i,
        }  # fmt: skip
        answer = httpx.post(f"{stack.url(port)}/v1/score", json=tx, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == 1
    capture = stack.volume("capture")
    rows = {r["transaction_id"]: r for r in read_predictions(capture) if r["transaction_id"] in ids}
    counts = [rows[i]["features"]["customer_id_nb_tx_1day_window"] for i in ids]
    assert counts == [1, 2, 3]
    # One capture file per replica (named by host), both written.
    assert {p.name.split("-")[1] for p in capture.glob("date=*/part-*.jsonl")} == {"serving"}
    assert len({p.name for p in capture.glob("date=*/part-*.jsonl")}) == 2


def test_down_leaves_nothing_behind(stack: Stack) -> None:
    started = time.monotonic()
    down = stack.compose("down", "--volumes", "--timeout", "10", timeout=180)
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    log.warning("compose: down in %.0f s", time.monotonic() - started)
    assert stack.left_behind() == {}
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{stack.url('SERVING_PORT')}/health", timeout=2)
