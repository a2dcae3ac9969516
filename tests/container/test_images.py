"""The images, built and run for real with podman: the serving image scores a transaction
with a model from a real MLflow server, as a non-root user; the pipelines image builds."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

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


def wait_ready(podman: list[str], name: str, url: str, timeout: float = 180) -> None:
    """Poll /ready; fail with the container's logs if it stops or never gets ready."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        state = sh(*podman, "inspect", "--format", "{{.State.Status}}", name).strip()
        if state != "running":
            break
        try:
            ready = httpx.get(f"{url}/ready", timeout=2)
            if ready.status_code == 200:
                return
            last = f"{ready.status_code} {ready.text}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(1)
    logs = subprocess.run([*podman, "logs", name], capture_output=True, text=True, check=False)
    pytest.fail(f"not ready ({state}; /ready: {last}):\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")


def test_serving_image_scores_as_non_root(podman: list[str], serving: tuple[str, str]) -> None:
    name, url = serving
    wait_ready(podman, name, url)
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


def test_pipelines_image_builds_and_runs_its_tools(
    podman: list[str], build_image: Callable[[str, list[str]], str]
) -> None:
    image = build_image("pipelines", ["pipelines", "monitoring"])
    probe = "import pipelines.flows, monitoring.flows; print('flows import')"
    out = sh(
        *podman, "run", "--rm", "--network", "none", *RUN_FLAGS, image,
        "sh", "-c", f"id -u && prefect version && dvc version && python -c \"{probe}\"",
    )  # fmt: skip
    assert out.splitlines()[0] == "10001"
    assert "flows import" in out
