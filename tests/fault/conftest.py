"""Fault fixtures: a redis-server this test owns, to stop, kill, freeze and restart."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import free_port


class RedisServer:
    """One redis-server on a fixed loopback port; restarts on the same port. With `aof`, it
    writes every command to its append-only file and comes back with its data."""

    def __init__(self, workdir: Path, aof: bool) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: make system-deps installs it")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self._argv += ["--dir", str(workdir), "--appendonly", "yes" if aof else "no"]
        if aof:
            self._argv += ["--appendfsync", "always"]
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            assert self._proc.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop (SIGTERM) or kill (SIGKILL) the server and wait until it is gone."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)  # a frozen server cannot handle SIGTERM
            self._proc.send_signal(sig)
            self._proc.wait(timeout=10)
        self._proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and accepted, nothing is answered."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)


@pytest.fixture(params=[False], ids=["no-persistence"])
def redis_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """A started redis-server (parametrize indirectly with True for append-only persistence),
    stopped afterwards whatever state the test left it in."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir, aof=request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()
