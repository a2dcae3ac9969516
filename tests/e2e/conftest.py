"""The local stack in a copy of the project, on free ports: commands as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import TINY, TINY_FLOORS, copy_project
from tests.integration.conftest import free_port

SERVICES = ("mlflow", "prefect", "worker", "serving")
# The flow's own parameters: tiny data and floors it can pass (the file stays as committed).
TINY_RUN = json.dumps({"overrides": {**TINY, **TINY_FLOORS}})


@dataclass
class Stack:
    """A project copy and the environment a user would have after `make up`."""

    root: Path
    env: dict[str, str]
    seen: list[psutil.Process] = field(default_factory=list)

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.env['FRAUDOPS_MLFLOW_PORT']}"

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.env['FRAUDOPS_PREFECT_PORT']}/api"

    @property
    def serving_url(self) -> str:
        return f"http://127.0.0.1:{self.env['FRAUDOPS_SERVING_SERVER__PORT']}"

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A command in the project root with the user's environment (no stdin)."""
        return subprocess.run(
            args,
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def make(self, target: str) -> subprocess.CompletedProcess[str]:
        """`make <target>` with the test's environment (`-o install`: it is installed)."""
        return self.run("make", "-o", "install", target, "RUN=")

    def prefect(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """The `prefect` CLI against the stack's server, as after the printed `export`."""
        return self.run(str(Path(sys.executable).parent / "prefect"), *args, timeout=timeout)

    def record_processes(self) -> None:
        """Remember every process of the stack (services and their children) for later."""
        for name in SERVICES:
            record = json.loads((self.root / ".run" / f"{name}.pid").read_text())
            proc = psutil.Process(record["pid"])
            self.seen += [proc, *proc.children(recursive=True)]

    def listening_on(self) -> set[str]:
        """The addresses the stack's processes listen on."""
        found: set[str] = set()
        for proc in self.seen:
            try:
                sockets = proc.net_connections(kind="inet")
            except psutil.Error:
                continue
            found |= {c.laddr.ip for c in sockets if c.status == psutil.CONN_LISTEN}
        return found

    def left_behind(self) -> list[str]:
        """Processes seen earlier that still run."""
        alive = []
        for proc in self.seen:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                continue
        return alive


def stack_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The user's shell: free ports, the venv first on PATH, the exports `make up` prints."""
    ports = {
        "FRAUDOPS_MLFLOW_PORT": free_port(),
        "FRAUDOPS_PREFECT_PORT": free_port(),
        "FRAUDOPS_SERVING_SERVER__PORT": free_port(),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update({k: str(v) for k, v in ports.items()})
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PREFECT_API_URL=f"http://127.0.0.1:{ports['FRAUDOPS_PREFECT_PORT']}/api",
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{ports['FRAUDOPS_MLFLOW_PORT']}",
        FRAUDOPS_SERVING_SERVER__WORKERS="1",  # two cores shared by everything here
        FRAUDOPS_SERVING_MODEL__POLL_INTERVAL_S="1",
        PREFECT_HOME=str(root / ".prefect-cli"),  # the CLI's own profile, not the user's
        DO_NOT_TRACK="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DVC_NO_ANALYTICS="1",
    )
    return {**env, **(extra or {})}


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """A factory of stacks in fresh project copies; every one is stopped afterwards."""
    made: list[Stack] = []

    def make(extra_env: dict[str, str] | None = None) -> Stack:
        root = copy_project(tmp_path / f"project{len(made)}", {})
        stack = Stack(root, stack_env(root, extra_env))
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.run(sys.executable, "-m", "stack", "down", timeout=120)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
