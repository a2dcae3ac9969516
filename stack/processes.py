"""Processes of the stack: start each in its own session, record it in a pid file, wait for
it to be healthy, and stop exactly the process trees the pid files name."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


class StartError(Exception):
    """A service did not become healthy; the message names it and its log."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def pid_file(run_dir: Path, name: str) -> Path:
    """Where the pid of service `name` is recorded."""
    return run_dir / f"{name}.pid"


def log_file(run_dir: Path, name: str) -> Path:
    """Where service `name` writes its output."""
    return run_dir / "logs" / f"{name}.log"


def port_in_use(port: int) -> bool:
    """True if something already listens on (or holds) 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start(
    run_dir: Path, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path
) -> psutil.Process:
    """Start `argv` in a new session (its own process group), output to its log file."""
    log = log_file(run_dir, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = psutil.Process(child.pid)
    record = {"pid": proc.pid, "create_time": proc.create_time(), "argv": list(argv)}
    pid_file(run_dir, name).write_text(json.dumps(record) + "\n")
    child.returncode = 0  # it outlives this process: nothing here will wait for it
    return proc


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def running(run_dir: Path, name: str) -> psutil.Process | None:
    """The live process that `name`'s pid file records, or None (no file, gone, pid reused)."""
    path = pid_file(run_dir, name)
    try:
        record = json.loads(path.read_text())
        proc = psutil.Process(int(record["pid"]))
        same = abs(proc.create_time() - float(record["create_time"])) < 0.05
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None
    return proc if same and _alive(proc) else None


@dataclass(frozen=True)
class Started:
    """A process this command started: its title, process and log (for messages)."""

    title: str
    proc: psutil.Process
    log: str


def check_alive(started: Iterable[Started]) -> None:
    """`StartError` naming the first started process that has exited."""
    for one in started:
        if not _alive(one.proc):
            why = f"exited (code {_exit_code(one.proc)}) before it was ready"
            raise StartError(f"{one.title} {why}; its log: {one.log}", one.log)


def wait_healthy(
    one: Started, healthy: Callable[[], bool], timeout_s: float, started: Iterable[Started]
) -> None:
    """Poll `healthy` until it holds. `StartError` if `one` or any other process in
    `started` exits first, or the timeout passes."""
    began = time.monotonic()
    while not healthy():
        check_alive([one, *started])
        if time.monotonic() - began > timeout_s:
            why = "was not ready in time (FRAUDOPS_STACK_START_TIMEOUT_S)"
            raise StartError(f"{one.title} {why}; its log: {one.log}", one.log)
        time.sleep(0.5)


def _exit_code(proc: psutil.Process) -> str:
    try:
        return str(proc.wait(timeout=0))
    except (psutil.Error, ChildProcessError):
        return "unknown"


def tail(path: Path, lines: int = 5) -> list[str]:
    """The last `lines` lines of a log (nothing if it is missing)."""
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal(procs: Sequence[psutil.Process], groups: Sequence[int], sig: signal.Signals) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def _wait_gone(procs: Sequence[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    alive = [p for p in procs if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if _alive(p)]
    return alive


def stop(roots: Sequence[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """SIGTERM each root's process group and every descendant (flow runs start their own
    sessions), then SIGKILL what is left after `timeout_s`. Return the processes killed."""
    procs = [p for root in roots for p in _tree(root)]
    groups = [root.pid for root in roots]  # each root leads its own session and group
    _signal(procs, groups, signal.SIGTERM)
    stubborn = _wait_gone(procs, timeout_s)
    if stubborn:
        _signal(stubborn, [g for g in groups if any(p.pid == g for p in stubborn)], signal.SIGKILL)
        _wait_gone(stubborn, 10)
    return stubborn
