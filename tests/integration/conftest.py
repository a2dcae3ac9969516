"""Integration fixtures: a Prefect test harness, a real Redis, scoring-service settings."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.settings import Settings, load_settings


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A temporary Prefect API (SQLite in a temp folder) shared by every flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, no persistence, stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: make system-deps installs it")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def serving_settings_in(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    """Settings for an app inside `project` (its configs, its MLflow store), with its state
    in `tmp_path`: `make(environ, **overrides)`."""
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    for name in [n for n in os.environ if n.startswith("FRAUDOPS_")]:
        monkeypatch.delenv(name)  # the test sees only the variables it sets

    def make(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        base = {
            "online_store.sqlite_path": str(tmp_path / "online.db"),
            "capture.dir": str(tmp_path / "capture"),
            "model.poll_interval_s": 0,
        }
        for name, value in (environ or {}).items():
            monkeypatch.setenv(name, value)
        return load_settings(overrides={**base, **overrides})

    return make


@pytest.fixture
def serving_settings(
    registered_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    """Settings for an app inside the registered project, with its state in `tmp_path`."""
    return serving_settings_in(registered_project, tmp_path, monkeypatch)
