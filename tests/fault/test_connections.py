"""Connections at the edges: SIGTERM (and a rolling restart) under keep-alive load answers
every request it read and resets none; slow clients are cut off by the header and body
timeouts while others are served; /admin is rate limited.

Each test starts the real service (`python -m serving`) on a free 127.0.0.1 port in the
trained project of `registered_project`, bounded in requests and time, and stops it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.fault.load import Load, Tally
from tests.integration.conftest import free_port
from tests.integration.test_serving_workers import TX, _env, _ready, _wait

pytestmark = pytest.mark.fault

CONNECTIONS = 64
WARM_S = 1.0  # load before the signal, once every connection has had an answer


class Service:
    """`python -m serving` with `workers` workers; `stop()` checks nothing is left behind."""

    def __init__(self, project: Path, tmp_path: Path, workers: int, **env: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving"],
            cwd=project,
            env=_env(tmp_path, self.port, workers, **env),
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.parent = psutil.Process(self.proc.pid)
        _wait(lambda: _ready(self.url), "the service to be ready", timeout=120)
        _wait(lambda: len(self.workers()) == (0 if workers == 1 else workers), "workers")

    def workers(self) -> set[int]:
        return {child.pid for child in self.parent.children()}

    def stop(self) -> int:
        try:
            children = self.parent.children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        finally:
            self.proc.kill()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"workers left behind: {alive}"
        return code


@pytest.fixture
def start(registered_project: Path, tmp_path: Path) -> Iterator[type[Service]]:
    started: list[Service] = []

    class Started(Service):
        def __init__(self, workers: int, **env: str) -> None:
            super().__init__(registered_project, tmp_path, workers, **env)
            started.append(self)

    yield Started  # type: ignore[misc]
    for service in started:
        service.stop()


async def _until(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _sigterm_under_load(service: Service) -> Tally:
    load = Load(service.port, TX, CONNECTIONS, first_id=80_000_000)
    clients = asyncio.create_task(load.run())
    await _until(lambda: load.answered_once == CONNECTIONS, "every connection answered", 60)
    await asyncio.sleep(WARM_S)
    sent_before = load.tally.sent
    service.proc.send_signal(signal.SIGTERM)
    tally = await asyncio.wait_for(clients, 90)
    print(f"\nsent before SIGTERM {sent_before}; {tally}")
    return tally


@pytest.mark.parametrize(("workers", "status"), [(1, -signal.SIGTERM), (2, 0)])
def test_sigterm_under_load_answers_every_request_it_read(
    start: type[Service], workers: int, status: int
) -> None:
    """64 keep-alive connections score continuously; SIGTERM: no reset, no request sent on
    an accepted connection left unanswered; the service exits as a supervisor expects
    (uvicorn re-raises the signal after a clean stop; gunicorn exits 0)."""
    service = start(workers)
    tally = asyncio.run(_sigterm_under_load(service))
    assert tally.unanswered() == 0, (tally, tally.errors[:5])
    assert tally.answered > 0
    assert service.proc.wait(timeout=60) == status


async def _restart_under_load(service: Service, old: set[int]) -> Tally:
    load = Load(service.port, TX, CONNECTIONS, first_id=81_000_000)
    clients = asyncio.create_task(load.run())
    await _until(lambda: load.answered_once == CONNECTIONS, "every connection answered", 60)
    await asyncio.sleep(WARM_S)
    service.proc.send_signal(signal.SIGHUP)
    await _until(lambda: not old & service.workers(), "the old workers to stop", 90)
    answered = load.tally.answered
    await _until(lambda: load.tally.answered > answered + 200, "the new workers to answer", 90)
    load.stop()
    tally = await asyncio.wait_for(clients, 60)
    print(f"\nrestart: {tally}")
    return tally


def test_a_rolling_restart_under_load_answers_every_request(start: type[Service]) -> None:
    """SIGHUP to gunicorn's arbiter: new workers start, the old ones drain (their clients
    are told `Connection: close` and reconnect to the new ones); nothing reset or lost."""
    service = start(2)
    old = service.workers()
    tally = asyncio.run(_restart_under_load(service, old))
    assert tally.unanswered() == 0, (tally, tally.errors[:5])
    assert tally.fresh_reset == 0 and tally.refused == 0, tally  # the socket stayed open
    assert tally.closed_by_server >= CONNECTIONS, tally
    assert len(service.workers()) == 2
