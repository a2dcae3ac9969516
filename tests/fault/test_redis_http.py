"""The real service on the Redis store while Redis fails: no 500, ever. An outage and a
restart empty are 503s (with /ready red) until Redis is back and re-seeded; then 200s
again, without restarting the service."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fault.conftest import RedisServer
from tests.integration.conftest import free_port

pytestmark = [
    pytest.mark.fault,
    pytest.mark.timeout(600),
]
log = logging.getLogger(__name__)


@pytest.fixture
def service(registered_project: Path, tmp_path: Path, redis_server: RedisServer) -> Iterator[str]:
    """`python -m serving` (one worker) on the test's Redis, stopped afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "FRAUDOPS_SERVING_SERVER__PORT": str(port),
        "FRAUDOPS_SERVING_SERVER__WORKERS": "1",
        "FRAUDOPS_SERVING_CAPTURE__DIR": str(tmp_path / "capture"),
        "FRAUDOPS_SERVING_ONLINE_STORE__BACKEND": "redis",
        "FRAUDOPS_SERVING_ONLINE_STORE__TIMEOUT_S": "0.5",
        "FRAUDOPS_REDIS_URL": redis_server.url,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "serving"], cwd=registered_project, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: proc.poll() is None and _status(url, "/ready") == 200, "ready", 120)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            proc.kill()


def _status(url: str, path: str) -> int | None:
    try:
        return httpx.get(url + path, timeout=5).status_code
    except httpx.HTTPError:
        return None


def _wait(ok: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Client:
    """Scores one new transaction per request on one keep-alive connection; counts statuses
    (None: the connection failed)."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=10)
        self.statuses: Counter[int | None] = Counter()
        self._next = 80_000_000

    def score(self) -> int | None:
        self._next += 1
        tx = {
            "transaction_id": self._next,
            "tx_datetime": "2018-05-11T12:30:05",
            "customer_id": 7,
            "terminal_id": 11,
            "tx_amount": 57.16,
        }
        try:
            status: int | None = self._http.post("/v1/score", json=tx).status_code
        except httpx.HTTPError:
            status = None
        self.statuses[status] += 1
        return status

    def for_a_while(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.score()

    def until(self, want: int, timeout: float = 30) -> None:
        _wait(lambda: self.score() == want, f"HTTP {want}", timeout)


def test_outage_and_restart_empty_are_503s_never_500s(
    service: str, redis_server: RedisServer
) -> None:
    client = Client(service)
    assert client.score() == 200

    redis_server.stop(signal.SIGKILL)
    client.for_a_while(3)
    outage = _status(service, "/ready")
    redis_server.start()  # empty: the service re-seeds it
    client.until(200)
    _wait(lambda: _status(service, "/ready") == 200, "/ready again")
    log.warning("outage, then restart empty: %s", dict(client.statuses))

    assert outage == 503
    assert client.statuses[500] == 0, client.statuses
    assert client.statuses[None] == 0, client.statuses  # no connection dropped
    assert set(client.statuses) == {200, 503}, client.statuses


def test_a_frozen_redis_is_503s_and_does_not_stall_the_event_loop(
    service: str, redis_server: RedisServer
) -> None:
    """SIGSTOP on Redis: scoring requests wait out the store's timeout (0.5 s) in the thread
    pool and answer 503; meanwhile /health answers at once (an event loop blocked by the
    store would make it wait for the scoring calls queued ahead of it)."""
    clients = [Client(service) for _ in range(8)]
    assert all(c.score() == 200 for c in clients)
    redis_server.freeze()
    try:
        threads = [threading.Thread(target=c.for_a_while, args=(3,)) for c in clients]
        for t in threads:
            t.start()
        time.sleep(0.5)
        waits = []
        for _ in range(10):
            started = time.monotonic()
            assert _status(service, "/health") == 200
            waits.append(time.monotonic() - started)
            time.sleep(0.1)
        ready = _status(service, "/ready")
        for t in threads:
            t.join()
    finally:
        redis_server.thaw()
    for c in clients:
        c.until(200)
    statuses = sum((c.statuses for c in clients), Counter())
    log.warning("freeze: %s; /health at most %.3f s", dict(statuses), max(waits))
    assert ready == 503
    assert statuses[500] == 0, statuses
    assert statuses[None] == 0, statuses
    assert statuses[503] > 0, statuses
    assert max(waits) < 1.0, waits
