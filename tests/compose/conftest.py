"""The compose stack of docker/compose.yaml, run with podman-compose on free loopback ports.

The images are the container tests' (their session fixtures, cache hits when those ran) plus
the services image (PostgreSQL, Redis, nginx from Debian's packages). This machine has no
bridge network, so docker/compose.hostnet.yaml puts every service on the host's network.
podman 4.3 cannot wait for health (`up --wait` and `service_healthy` need podman 4.6), so
`Stack.wait_healthy` does it: every container's own healthcheck, run until all pass.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.container.conftest import (  # noqa: F401  (the container tests' fixtures)
    RUN_FLAGS,
    base_image,
    build_image,
    podman,
    sh,
)
from tests.integration.conftest import free_port

FILES = ["-f", "docker/compose.yaml", "-f", "docker/compose.hostnet.yaml"]
PORTS = (
    "POSTGRES_PORT", "REDIS_PORT", "MLFLOW_PORT", "PREFECT_PORT", "WORKER_HEALTH_PORT",
    "SERVING_A_PORT", "SERVING_B_PORT", "SERVING_PORT",
)  # fmt: skip


@dataclass
class Stack:
    """One compose project: its command, environment and ports."""

    project: str
    podman: list[str]
    env: dict[str, str]

    def port(self, name: str) -> int:
        return int(self.env[name])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port(name)}"

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """podman-compose on this project, from the project root."""
        command = [
            str(Path(sys.executable).parent / "podman-compose"), "-p", self.project,
            f"--podman-path={self.podman[0]}", f"--podman-args={' '.join(self.podman[1:])}",
            f"--podman-run-args={' '.join(RUN_FLAGS)}", *FILES, *args,
        ]  # fmt: skip
        return subprocess.run(
            command, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def containers(self) -> dict[str, str]:
        """The project's containers (all states): service name -> container name."""
        out = sh(
            *self.podman, "ps", "--all", "--format", "json",
            "--filter", f"label=io.podman.compose.project={self.project}",
        )  # fmt: skip
        return {
            c["Labels"]["io.podman.compose.service"]: c["Names"][0] for c in json.loads(out or "[]")
        }

    def wait_healthy(self, timeout: float) -> float:
        """Run each container's healthcheck until all pass; the seconds it took."""
        started = time.monotonic()
        pending = dict(self.containers())
        while pending and time.monotonic() - started < timeout:
            for service, name in list(pending.items()):
                check = subprocess.run(
                    [*self.podman, "healthcheck", "run", name], capture_output=True, check=False
                )
                if check.returncode == 0:
                    del pending[service]
            time.sleep(2)
        if pending:
            pytest.fail(
                f"not healthy within {timeout:.0f} s: {sorted(pending)}\n{self.logs(pending)}"
            )
        return time.monotonic() - started

    def logs(self, services: dict[str, str]) -> str:
        out = []
        for service, name in services.items():
            done = subprocess.run(
                [*self.podman, "logs", "--tail", "30", name], capture_output=True, text=True,
                check=False,
            )  # fmt: skip
            out.append(f"--- {service}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return "\n".join(out)

    def volume(self, name: str) -> Path:
        mount = sh(*self.podman, "volume", "inspect", "--format", "{{.Mountpoint}}",
                   f"{self.project}_{name}")  # fmt: skip
        return Path(mount.strip())

    def left_behind(self) -> dict[str, list[str]]:
        """Containers, pods and volumes of the project that still exist."""
        label = f"label=io.podman.compose.project={self.project}"
        found = {
            "containers": sh(*self.podman, "ps", "--all", "-q", "--filter", label).split(),
            "volumes": sh(*self.podman, "volume", "ls", "-q", "--filter", label).split(),
            "pods": sh(
                *self.podman, "pod", "ps", "-q", "--filter", f"name=pod_{self.project}"
            ).split(),
        }
        return {kind: ids for kind, ids in found.items() if ids}


@pytest.fixture(scope="session")
def services_image(podman: list[str]) -> str:  # noqa: F811
    """PostgreSQL, Redis and nginx from Debian's packages, on an offline debootstrapped base."""
    base = sh(str(REPO_ROOT / "docker/base-image.sh"), "services").strip().splitlines()[-1]
    tag = "localhost/fraudops-services:test"
    sh(
        *podman, "build", "--pull=never", "--network=none", "--format=docker", *RUN_FLAGS,
        "--build-arg", f"BASE_IMAGE={base}", "-f", "docker/services.Dockerfile", "-t", tag, ".",
    )  # fmt: skip
    return tag


@pytest.fixture(scope="module")
def stack(
    podman: list[str],  # noqa: F811
    build_image: Callable[[str, list[str]], str],  # noqa: F811
    services_image: str,
) -> Iterator[Stack]:
    """The stack's environment on free ports (nothing started: the first test brings it up);
    whatever runs at the end is taken down with its volumes."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: make system-deps installs it")
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
        "FRAUDOPS_BIND": "127.0.0.1",
        "MLFLOW_WORKERS": "1",
        "FRAUDOPS_SERVICES_IMAGE": services_image,
        "FRAUDOPS_SERVING_IMAGE": build_image("serving", ["serving"]),
        "FRAUDOPS_PIPELINES_IMAGE": build_image("pipelines", ["pipelines", "monitoring"]),
        **{name: str(free_port()) for name in PORTS},
    }
    for name in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "COMPOSE_PROJECT_NAME"):
        env.pop(name, None)
    project = f"fraudops-test-{uuid.uuid4().hex[:8]}"
    running = Stack(project, podman, env)
    try:
        yield running
    finally:
        running.compose("down", "--volumes", "--timeout", "10", timeout=180)
