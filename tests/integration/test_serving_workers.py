"""`python -m serving` with several workers (gunicorn's arbiter, uvicorn's worker class):
both serve, a dead worker is replaced, a worker that cannot start stops the service, a port
in use is refused, SIGTERM stops every worker after it flushed its capture; an arbiter killed
outright leaves no worker behind. The command line and its flags."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.captures import read_predictions
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

TX: dict[str, Any] = {
    "transaction_id": 70_000_001,
    "tx_datetime": "2018-05-11T12:30:05",
    "customer_id": 7,
    "terminal_id": 11,
    "tx_amount": 57.16,
}


def _env(tmp_path: Path, port: int, workers: int = 2, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "FRAUDOPS_SERVING_SERVER__PORT": str(port),
        "FRAUDOPS_SERVING_SERVER__WORKERS": str(workers),
        "FRAUDOPS_SERVING_CAPTURE__DIR": str(tmp_path / "capture"),
        "FRAUDOPS_SERVING_ONLINE_STORE__SQLITE_PATH": str(tmp_path / "online.db"),
        **extra,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def _workers(parent: psutil.Process) -> dict[int, psutil.Process]:
    """The arbiter's worker processes (forked), by pid."""
    return {child.pid: child for child in parent.children()}


def _wait(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def service(
    registered_project: Path, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The service with two workers, both listening; stopped (and checked gone) afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving"], cwd=registered_project, env=_env(tmp_path, port)
    )
    parent = psutil.Process(proc.pid)
    try:
        _wait(lambda: _ready(f"http://127.0.0.1:{port}"), "the service to be ready")
        _wait(lambda: len(_workers(parent)) == 2, "two workers")
        yield proc, port
    finally:
        try:
            children = parent.children(recursive=True)
        except psutil.NoSuchProcess:  # killed by the test, which checks its workers
            children = []
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            proc.kill()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"workers left behind: {alive}"


def _keep_alive(port: int) -> socket.socket:
    """A connection that was answered a score and stays open (HTTP/1.1 keep-alive)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    body = json.dumps(TX).encode()
    head = "POST /v1/score HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert conn.recv(4096).startswith(b"HTTP/1.1 200"), "no score"
    return conn


def _holder(workers: dict[int, psutil.Process], conn: socket.socket) -> int | None:
    """The worker holding the server side of `conn`."""
    client = conn.getsockname()
    for pid, worker in workers.items():
        for c in worker.net_connections(kind="tcp"):
            if c.raddr and (c.raddr.ip, c.raddr.port) == client:
                return pid
    return None


def test_two_workers_both_serve(service: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = service
    workers = _workers(psutil.Process(proc.pid))
    conns: list[socket.socket] = []
    served: set[int | None] = set()
    try:
        while served != set(workers) and len(conns) < 64:  # whichever accepts first
            conns.append(_keep_alive(port))
            served.add(_holder(workers, conns[-1]))
    finally:
        for conn in conns:
            conn.close()
    assert served == set(workers), f"{len(conns)} connections, served by {served} of {workers}"


def test_a_dead_worker_is_replaced(service: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = service
    parent = psutil.Process(proc.pid)
    victim = next(iter(_workers(parent).values()))
    victim.kill()
    victim.wait(timeout=10)

    def replaced() -> bool:
        pids = set(_workers(parent))
        return len(pids) == 2 and victim.pid not in pids

    _wait(replaced, "a replacement worker")
    url = f"http://127.0.0.1:{port}"
    for i in range(20):  # new connections, whichever worker takes them
        answer = httpx.post(
            f"{url}/v1/score",
            json={**TX, "transaction_id": TX["transaction_id"] + i},
            headers={"Connection": "close"},
        )
        assert answer.status_code == 200, answer.text
    # The dead worker's model-version gauge is gone from the metrics the workers share.
    metrics = httpx.get(f"{url}/metrics").text
    assert "fraudops_model_version" in metrics
    assert f'pid="{victim.pid}"' not in metrics


def test_workers_stop_when_the_arbiter_is_killed(
    service: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, _ = service
    workers = list(_workers(psutil.Process(proc.pid)).values())
    proc.kill()  # no SIGTERM to pass on: each worker sees its parent change
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, f"workers left behind: {alive}"


def test_sigterm_stops_every_worker_after_flushing_its_capture(
    registered_project: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = _env(tmp_path, port)
    proc = subprocess.Popen([sys.executable, "-m", "serving"], cwd=registered_project, env=env)
    parent = psutil.Process(proc.pid)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: _ready(url), "the service to be ready")
        for i in range(30):  # new connections: both workers capture some
            httpx.post(
                f"{url}/v1/score",
                json={**TX, "transaction_id": 71_000_000 + i},
                headers={"Connection": "close"},
            )
        workers = parent.children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive
    finally:
        proc.kill()
    assert len(read_predictions(tmp_path / "capture")) == 30


def test_a_port_in_use_is_refused(registered_project: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "serving"],
            cwd=registered_project,
            env=_env(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"127.0.0.1:{port}: the address is in use" in done.stderr


def test_a_worker_that_cannot_start_stops_the_service(
    registered_project: Path, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    env = _env(
        tmp_path,
        free_port(),
        FRAUDOPS_SERVING_ONLINE_STORE__SQLITE_PATH=str(tmp_path / "a-file" / "online.db"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving"],
        cwd=registered_project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert "Worker failed to boot" in err


def test_flags_override_the_settings(registered_project: Path, tmp_path: Path) -> None:
    """--port and --workers win over FRAUDOPS_SERVING_SERVER__*; one worker is one process."""
    port = free_port()
    env = _env(tmp_path, free_port(), workers=2)  # the flags below must win over these
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving", "--port", str(port), "--workers", "1"],
        cwd=registered_project,
        env=env,
    )
    try:
        _wait(lambda: _ready(f"http://127.0.0.1:{port}"), "the service on --port")
        assert psutil.Process(proc.pid).children() == []
        proc.send_signal(signal.SIGTERM)
        # uvicorn stops cleanly, then re-raises the signal: the status a supervisor expects.
        assert proc.wait(timeout=60) == -signal.SIGTERM
    finally:
        proc.kill()
