"""The images, built and run for real with podman: the serving image scores a transaction
with a model from a real MLflow server, as a non-root user; the pipelines image builds, and
its worker registers with a real Prefect server."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.container.conftest import RUN_FLAGS, sh
from tests.integration.conftest import free_port

pytestmark = pytest.mark.container

TX = {
    "transaction_id": 40_000_001,
    "tx_datetime": "2018-05-11T12:30:05",
    "customer_id": 7,
    "terminal_id": 11,
    "tx_amount": 57.16,
}


@pytest.fixture(scope="module")
def serving_image(build_image: Callable[[str, list[str]], str]) -> str:
    return build_image("serving", ["serving"])


@pytest.fixture
def serving(
    podman: list[str],
    serving_image: str,
    mlflow_server: str,
    registered_project: Path,
    tmp_path: Path,
) -> Iterator[tuple[str, str]]:
    """The serving container on the host network, following the registered champion."""
    port = free_port()
    name = f"fraudops-serving-{uuid.uuid4().hex[:8]}"
    # The registry records artifact locations as absolute host paths: mount them there (a
    # copy, since loading writes a file next to the model, and uid 10001 must be able to).
    artifacts = registered_project / ".mlflow/artifacts"
    copy = tmp_path / "artifacts"
    shutil.copytree(artifacts, copy)
    sh("chmod", "-R", "a+rwX", str(copy))
    sh(
        *podman, "run", "--detach", "--name", name, "--network", "host", *RUN_FLAGS,
        "--volume", f"{copy}:{artifacts}",
        "--env", f"MLFLOW_TRACKING_URI={mlflow_server}",
        "--env", "FRAUDOPS_SERVING_SERVER__HOST=127.0.0.1",
        "--env", f"FRAUDOPS_SERVING_SERVER__PORT={port}",
        "--env", "FRAUDOPS_SERVING_SERVER__WORKERS=1",
        serving_image,
    )  # fmt: skip
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*podman, "rm", "--force", "--time", "5", name], capture_output=True, check=False
        )


def wait_healthy(podman: list[str], name: str, url: str, timeout: float = 180) -> None:
    """Poll `url` until 200; fail with the container's logs if it stops or never does."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        state = sh(*podman, "inspect", "--format", "{{.State.Status}}", name).strip()
        if state != "running":
            break
        try:
            ready = httpx.get(url, timeout=2)
            if ready.status_code == 200:
                return
            last = f"{ready.status_code} {ready.text}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(1)
    logs = subprocess.run([*podman, "logs", name], capture_output=True, text=True, check=False)
    pytest.fail(
        f"not healthy ({state}; {url}: {last}):\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
    )


def test_serving_image_scores_as_non_root(podman: list[str], serving: tuple[str, str]) -> None:
    name, url = serving
    wait_healthy(podman, name, f"{url}/ready")
    scored = httpx.post(f"{url}/v1/score", json=TX, timeout=10)
    assert scored.status_code == 200, scored.text
    body = scored.json()
    assert body["transaction_id"] == TX["transaction_id"]
    assert body["model_version"] == 1
    assert 0.0 <= body["fraud_probability"] <= 1.0
    assert httpx.get(f"{url}/v1/model", timeout=10).json()["version"] == 1
    # The image's own HEALTHCHECK passes, and the service runs as uid 10001, not root.
    sh(*podman, "healthcheck", "run", name)
    assert sh(*podman, "exec", name, "id", "-u").strip() == "10001"
    top = sh(*podman, "top", name, "user", "args")
    assert "python -m serving" in top
    assert all(line.split()[0] != "root" for line in top.splitlines()[1:]), top
    # SIGTERM stops it cleanly within the grace period.
    sh(*podman, "stop", "--time", "30", name)
    assert sh(*podman, "inspect", "--format", "{{.State.ExitCode}}", name).strip() == "0"


@pytest.fixture(scope="module")
def pipelines_image(build_image: Callable[[str, list[str]], str]) -> str:
    return build_image("pipelines", ["pipelines", "monitoring"])


def test_pipelines_image_runs_its_tools_as_non_root(
    podman: list[str], pipelines_image: str
) -> None:
    probe = "import pipelines.flows.training, monitoring.flows; print('flows import')"
    out = sh(
        *podman, "run", "--rm", "--network", "none", *RUN_FLAGS, pipelines_image,
        "sh", "-c", f"id -u && prefect version && dvc version && python -c \"{probe}\"",
    )  # fmt: skip
    assert out.splitlines()[0] == "10001"
    assert "flows import" in out


def test_worker_container_registers_and_polls(
    podman: list[str], pipelines_image: str, prefect_server: str
) -> None:
    """The image's own command against a real Prefect server: pool, deployments, worker."""
    pool, health = "containers-test", free_port()
    name = f"fraudops-worker-{uuid.uuid4().hex[:8]}"
    sh(
        *podman, "run", "--detach", "--name", name, "--network", "host", *RUN_FLAGS,
        "--env", f"PREFECT_API_URL={prefect_server}",
        "--env", f"FRAUDOPS_WORK_POOL={pool}",
        "--env", "PREFECT_WORKER_WEBSERVER_HOST=127.0.0.1",
        "--env", f"PREFECT_WORKER_WEBSERVER_PORT={health}",
        pipelines_image,
    )  # fmt: skip
    try:
        wait_healthy(podman, name, f"http://127.0.0.1:{health}/health")
        sh(*podman, "healthcheck", "run", name)
        assert poll_workers(f"{prefect_server}/work_pools/{pool}/workers/filter"), "no worker"
        deployed = httpx.post(f"{prefect_server}/deployments/filter", json={}).json()
        assert {d["name"] for d in deployed} >= expected_deployments()
        sh(*podman, "stop", "--time", "30", name)
    finally:
        subprocess.run([*podman, "rm", "--force", name], capture_output=True, check=False)


def poll_workers(url: str, timeout: float = 60) -> list[dict[str, object]]:
    """The workers the server lists for the pool, once there is one (heartbeats lag health)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.post(url, json={}, timeout=10)
        assert answer.status_code == 200, answer.text
        workers: list[dict[str, object]] = answer.json()
        if workers or time.monotonic() > deadline:
            return workers
        time.sleep(1)


def expected_deployments() -> set[str]:
    """Names of the deployments in prefect.yaml whose entrypoint file exists (none if absent)."""
    prefect_file = REPO_ROOT / "prefect.yaml"
    if not prefect_file.exists():
        return set()
    deployments = yaml.safe_load(prefect_file.read_text())["deployments"]
    return {
        d["name"] for d in deployments if (REPO_ROOT / d["entrypoint"].partition(":")[0]).is_file()
    }
