"""The processes the serving benchmark loads: started, awaited until ready, timed, idled.

A server is ready at its first 200 to a GET of its readiness URL, polled every 20 ms, so a
start-up is timed to within that.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psutil

POLL_S = 0.02
READY_TIMEOUT_S = 120.0
# Each load starts once the servers are idle: under 5 % of a core over half a second.
QUIET, SETTLE_WINDOW_S, SETTLE_TIMEOUT_S = 0.05, 0.5, 60.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_of(url: str) -> int | None:
    """The status of a GET of `url`, or None when nothing answers."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        conn.request("GET", parts.path or "/")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], ready: str) -> float:
    name = " ".join(map(str, proc.args)) if isinstance(proc.args, list) else str(proc.args)
    """Seconds until `ready` answers 200; an error if the process exits or takes too long."""
    start = time.perf_counter()
    while status_of(ready) != 200:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready")
        if time.perf_counter() - start > READY_TIMEOUT_S:
            raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)
    return time.perf_counter() - start


@contextmanager
def server(
    args: list[str], cwd: Path, env: dict[str, str], ready: str
) -> Iterator[tuple[int, float]]:
    """Run `args` until the block ends; yields its pid and its seconds from spawn to ready."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(proc, ready)
        yield proc.pid, time.perf_counter() - start
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by the process trees of `pids` (those still alive)."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total


def settle(pids: list[int]) -> None:
    """Until the servers are idle: a load starts neither while one still works off the
    previous one (MLflow finishing requests queued at 64 connections, ours compacting)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    before = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_WINDOW_S)
        after = cpu_seconds(pids)
        if after - before < QUIET * SETTLE_WINDOW_S:
            return
        before = after
