"""Faults of `make up` in a project copy: a taken port is named, a service that fails to
start stops the others and names its log, and `make down` with nothing running says so."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from stack import processes
from tests.conftest import copy_project
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("stack"), {})


def stack(root: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m stack <command>` in `root`, on free ports unless `env` says."""
    ports = {
        "FRAUDOPS_MLFLOW_PORT": str(free_port()),
        "FRAUDOPS_PREFECT_PORT": str(free_port()),
        "FRAUDOPS_SERVING_SERVER__PORT": str(free_port()),
    }
    full = {**os.environ, **ports, **env}
    return subprocess.run(
        [sys.executable, "-m", "stack", command],
        cwd=root,
        env=full,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_port_in_use_is_named_and_nothing_starts(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = stack(project, "up", FRAUDOPS_PREFECT_PORT=str(port))
    assert out.returncode == 1
    assert f"port {port} (FRAUDOPS_PREFECT_PORT, for the Prefect server) is already in use" in (
        out.stderr
    )
    assert "starting" not in out.stdout
    assert not list((project / ".run").glob("*.pid"))


def test_a_bad_port_setting_is_named(project: Path) -> None:
    out = stack(project, "up", FRAUDOPS_MLFLOW_PORT="80000")
    assert out.returncode == 2
    assert "FRAUDOPS_MLFLOW_PORT='80000': not a TCP port (1-65535)" in out.stderr


def test_a_service_that_fails_stops_the_others_and_names_its_log(project: Path) -> None:
    """MLflow cannot open its backend store: the Prefect server it started beside is stopped."""
    prefect_port = free_port()
    out = stack(
        project,
        "up",
        FRAUDOPS_MLFLOW_BACKEND_STORE_URI="nosuchdb://nowhere/mlflow",
        FRAUDOPS_PREFECT_PORT=str(prefect_port),
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error: MLflow server exited" in out.stderr
    assert "its log: .run/logs/mlflow.log" in out.stderr
    stopped = out.stderr.split("stopped what this command had started: ")[1].splitlines()[0]
    assert {"mlflow", "prefect"} <= set(stopped.split(", "))  # the worker too if it started
    assert "nosuchdb" in (project / ".run/logs/mlflow.log").read_text()
    assert not list((project / ".run").glob("*.pid"))
    assert [p.pid for p in psutil.process_iter(["cwd"]) if p.info["cwd"] == str(project)] == []


def test_down_and_status_with_nothing_running(project: Path) -> None:
    down = stack(project, "down")
    assert down.returncode == 0
    assert "the stack is not running" in down.stdout
    status = stack(project, "status")
    assert status.returncode == 0
    assert status.stdout.count("stopped") == 4


IGNORES_SIGTERM = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
    " start_new_session=True)\n"  # like a flow run: a child in a session of its own
    "time.sleep(600)\n"
)


def test_stop_escalates_to_sigkill_and_reaches_children_in_other_sessions(tmp_path: Path) -> None:
    proc = processes.start(
        tmp_path, "stubborn", [sys.executable, "-c", IGNORES_SIGTERM], dict(os.environ), tmp_path
    )
    assert processes.running(tmp_path, "stubborn") == proc
    deadline = time.monotonic() + 30
    while not proc.children() and time.monotonic() < deadline:
        time.sleep(0.1)
    tree = [proc, *proc.children(recursive=True)]
    assert len(tree) == 2
    began = time.monotonic()
    killed = processes.stop([proc], timeout_s=1)
    assert time.monotonic() - began < 15
    assert proc in killed  # SIGTERM ignored: killed after the timeout
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in tree)
    assert processes.running(tmp_path, "stubborn") is None


def test_a_pid_file_naming_another_process_is_not_ours(tmp_path: Path) -> None:
    """A reused pid (same number, other start time) is never taken for a stack process."""
    (tmp_path / "mlflow.pid").write_text(
        json.dumps({"pid": os.getpid(), "create_time": 1.0, "argv": ["mlflow"]})
    )
    assert processes.running(tmp_path, "mlflow") is None
    (tmp_path / "mlflow.pid").write_text("not json")
    assert processes.running(tmp_path, "mlflow") is None
