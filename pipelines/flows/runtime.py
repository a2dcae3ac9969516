"""How a command line runs Prefect flows in-process (`make run`, `make simulate`).

Three things a stranger's machine needs that Prefect's defaults do not give:
- **A project-local Prefect home** (`.prefect/`, gitignored): the temporary local API keeps
  its SQLite database there, not in `~/.prefect`, which every other project on the machine
  shares (two of them migrating one database at once fail).
- **Time for a slow first start**: the temporary API migrates a new database on its first
  start; on a busy machine that took 24 s against Prefect's 20 s limit. The limit here is
  180 s, and if even that passes, one line says so (not a traceback).
- **A run that stops when told**: SIGTERM or Ctrl-C ends the whole run within 10 s, with no
  process left and no stage output half-written. The flow runs in a worker thread, so this
  process's main thread keeps the signal (Prefect's own handler, installed only on the main
  thread, would report a crash to a temporary API that is already gone, and retry it).

This module imports no Prefect: `prepare()` must run before Prefect is first imported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pipelines.errors import FraudOpsError

if TYPE_CHECKING:
    import psutil

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFECT_HOME = Path(".prefect")
STARTUP_TIMEOUT_S = 180
STOP_WITHIN_S = 10.0
# Set when a stop signal arrived: tasks check it before they start, DVC stages restore the
# outputs of the stage they were running (pipelines/versioning.py).
STOP = threading.Event()
# Called (in the main thread) once the run's worker has stopped or been given up on.
_cleanups: list[Callable[[], None]] = []
_TIMEOUT_MARK = "Timed out while attempting to connect to ephemeral Prefect API server"


class StopRequestedError(FraudOpsError):
    """The run was told to stop (SIGTERM, SIGINT) before this step started."""


class PrefectStartError(FraudOpsError):
    """Prefect's temporary local API did not start."""


def prepare(root: Path = Path(".")) -> None:
    """Point Prefect at the project's own home and a start-up limit that fits a busy machine.

    Values the user set in the environment win; a server (`PREFECT_API_URL`) needs neither.
    """
    os.environ.setdefault("PREFECT_HOME", str((root / PREFECT_HOME).resolve()))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # as the Makefile does
    os.environ.setdefault(
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(STARTUP_TIMEOUT_S)
    )


def check_not_stopping(step: str) -> None:
    """Raise `StopRequestedError` when a stop was requested: the next step must not start."""
    if STOP.is_set():
        raise StopRequestedError(f"stopped before {step}")


def on_stop(cleanup: Callable[[], None]) -> Callable[[], None]:
    """Run `cleanup` if the run is stopped by a signal; returns a function that unregisters it."""
    _cleanups.append(cleanup)
    return lambda: _cleanups.remove(cleanup) if cleanup in _cleanups else None


def run(work: Callable[[], T]) -> T:
    """Run `work` (a flow call) so that SIGTERM and SIGINT stop everything within 10 s.

    A Prefect start-up timeout becomes `PrefectStartError` (one line); other errors pass on.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the main thread, raised there
            failure.append(exc)

    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)
        STOP.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    worker = threading.Thread(target=target, name="flow-run", daemon=True)
    try:
        worker.start()
        while worker.is_alive() and not STOP.is_set():
            worker.join(0.2)
        if STOP.is_set():
            _stop(worker, signal.Signals(received[0]))
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if failure:
        raise _translated(failure[0])
    return outcome[0]


def _translated(exc: BaseException) -> BaseException:
    if _TIMEOUT_MARK in str(exc):
        limit = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "?")
        return PrefectStartError(
            f"Prefect's temporary local API did not start within {limit} s "
            "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS); the machine may be busy: run "
            "again, raise the limit, or run against a server (make up, then PREFECT_API_URL)"
        )
    return exc


def _stop(worker: threading.Thread, sig: signal.Signals) -> None:
    """Stop the run: stage commands first, then the worker, then everything left; exit."""
    import psutil  # only when stopping

    print(f"\n{sig.name}: stopping the run", file=sys.stderr, flush=True)
    me = psutil.Process()
    children = me.children(recursive=True)
    servers = [p for p in children if _is_prefect_server(p)]
    _terminate([p for p in children if p not in servers], grace_s=2.0)
    worker.join(timeout=3.0)  # its stage fails, restores its outputs, and the flow ends
    for cleanup in reversed(_cleanups):  # innermost first, as `finally` blocks unwind
        try:
            cleanup()
        except Exception:  # a failed cleanup must not keep the process alive
            log.exception("cleanup after %s failed", sig.name)
    _terminate(me.children(recursive=True), grace_s=1.0)
    still = "" if not worker.is_alive() else " (its last step was cut short)"
    print(f"{sig.name}: run stopped{still}", file=sys.stderr, flush=True)
    sys.stdout.flush()  # not logging.shutdown(): Prefect's API log handler would wait on the
    # API stopped above (5 s measured) before letting the process go
    os._exit(128 + sig.value)  # the worker thread may still be inside Prefect's client


def _is_prefect_server(proc: psutil.Process) -> bool:
    import psutil

    try:
        return "prefect.server.api.server:create_app" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def _terminate(procs: list[psutil.Process], grace_s: float) -> None:
    """SIGTERM each process, then SIGKILL whatever is left after `grace_s`."""
    import psutil

    alive: list[psutil.Process] = []
    for proc in procs:
        try:
            proc.terminate()
            alive.append(proc)
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(alive, timeout=grace_s)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(left, timeout=1.0)
