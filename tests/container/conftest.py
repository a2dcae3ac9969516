"""Container fixtures: podman, an offline Debian base image, images built from a wheelhouse.

No image can be pulled on our machines: the base is debootstrapped from Debian's packages
(docker/base-image.sh, cached), Python packages come from wheels prepared on the host from
uv.lock (docker/wheelhouse.py), and every build runs with `--network=none --pull=never`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT
from tests.integration.conftest import free_port

log = logging.getLogger(__name__)

# This sandbox refuses the default rlimits and has no bridge network (see docker/README.md).
RUN_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
# Images built in this session: tests/compose imports these fixtures, which pytest then holds
# once per directory; the second asks here instead of checking the build cache again (~1 min).
_BUILT: dict[tuple[str, ...], str] = {}


@pytest.fixture(scope="session")
def podman() -> list[str]:
    """The podman command; runc when installed (Debian's crun rejects hybrid cgroup hosts)."""
    binary = shutil.which("podman")
    if binary is None:
        pytest.fail("podman is not installed: make system-deps installs it (and runc, debootstrap)")
    runc = shutil.which("runc")
    return [binary, "--runtime", runc] if runc else [binary]


def sh(*args: str, timeout: float = 1800) -> str:
    """Run a command from the project root; fail with its output."""
    done = subprocess.run(
        args, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="session")
def base_image(podman: list[str]) -> str:
    """A Debian bookworm base with python3, built offline once per machine (then cached)."""
    started = time.monotonic()
    image = sh(str(REPO_ROOT / "docker/base-image.sh")).strip().splitlines()[-1]
    log.warning("base image %s ready in %.0f s", image, time.monotonic() - started)
    return image


@pytest.fixture(scope="session")
def build_image(podman: list[str], base_image: str) -> Callable[[str, list[str]], str]:
    """Build `docker/<name>.Dockerfile` from a wheelhouse of `extras`, with no network."""

    def build(name: str, extras: list[str]) -> str:
        if (name, *extras) in _BUILT:  # another directory's session fixture built it
            return _BUILT[(name, *extras)]
        started = time.monotonic()
        sh(sys.executable, str(REPO_ROOT / "docker/wheelhouse.py"), *extras)
        fetched = time.monotonic()
        tag = f"localhost/fraudops-{name}:test"
        sh(
            *podman, "build", "--pull=never", "--network=none", "--format=docker", *RUN_FLAGS,
            "--build-arg", f"BASE_IMAGE={base_image}",
            "-f", f"docker/{name}.Dockerfile", "-t", tag, ".",
        )  # fmt: skip
        log.warning(
            "%s: wheels in %.0f s, image built in %.0f s",
            tag,
            fetched - started,
            time.monotonic() - fetched,
        )
        _BUILT[(name, *extras)] = tag
        return tag

    return build


@pytest.fixture(scope="session")
def mlflow_server(
    registered_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real MLflow server on the registered project's store, on a free loopback port."""
    port = free_port()
    store = registered_project / ".mlflow"
    logs = (tmp_path_factory.mktemp("mlflow") / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{store}/mlflow.db",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        cwd=registered_project,
        stdout=logs,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(proc, f"{url}/health", 120, "mlflow server", logs.name)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    logs.close()


def _wait_healthy(
    proc: subprocess.Popen[bytes], health: str, seconds: float, what: str, log: str
) -> None:
    """Wait until `health` answers 200; fail (and stop `proc`) if it exits or times out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited at start-up; see {log}"
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    proc.terminate()
    pytest.fail(f"{what} not healthy within {seconds:.0f} s; see {log}")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server (SQLite in a temp folder) on a free loopback port; its API URL."""
    port = free_port()
    home = tmp_path_factory.mktemp("prefect")
    logs = (home / "server.log").open("w")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "prefect"), "server", "start",
            "--host", "127.0.0.1", "--port", str(port),
        ],
        env=env,
        stdout=logs,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    _wait_healthy(proc, f"{api}/health", 180, "prefect server", logs.name)
    yield api
    proc.terminate()
    proc.wait(timeout=30)
    logs.close()
