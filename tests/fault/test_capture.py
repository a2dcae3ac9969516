"""Faults against capture: kill -9 of every serving process under load loses no answered
transaction (answered ids are all in the capture), and a retry afterwards gets the answer
the first attempt got. Each test prints sent / answered / captured / failed."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.captures import read_predictions
from tests.integration.conftest import free_port
from tests.integration.test_serving_workers import TX, _env, _ready, _wait

pytestmark = pytest.mark.fault

LOAD_S = 3.0  # load before the kill
CLIENTS = 8


class Load:
    """Clients sending new transactions (singles and batches of 10) on keep-alive
    connections; records every id answered with a 200 whose body was read whole."""

    def __init__(self, url: str, first_id: int) -> None:
        self.url = url
        self._ids = itertools.count(first_id)
        self._lock = threading.Lock()
        self.sent = self.failed = 0
        self.answered: dict[int, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i % 2 == 0,), daemon=True)
            for i in range(CLIENTS)
        ]

    def _next(self, n: int) -> list[dict[str, Any]]:
        with self._lock:
            ids = [next(self._ids) for _ in range(n)]
        return [
            {**TX, "transaction_id": i, "customer_id": i % 50, "terminal_id": i % 40} for i in ids
        ]

    def _run(self, batches: bool) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                txs = self._next(10 if batches else 1)
                with self._lock:
                    self.sent += len(txs)
                try:
                    if batches:
                        r = client.post("/v1/score/batch", json={"transactions": txs})
                        scores = r.json()["scores"] if r.status_code == 200 else []
                    else:
                        r = client.post("/v1/score", json=txs[0])
                        scores = [r.json()] if r.status_code == 200 else []
                except httpx.ConnectError:  # the service is gone: this client stops
                    with self._lock:
                        self.failed += len(txs)
                    return
                except (httpx.HTTPError, ValueError):
                    scores = []
                with self._lock:
                    self.failed += len(txs) - len(scores)
                    self.answered.update({s["transaction_id"]: s for s in scores})

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_under_load_loses_no_answered_transaction(
    registered_project: Path, tmp_path: Path, workers: int
) -> None:
    port = free_port()
    env = _env(tmp_path, port, workers=workers)
    proc = subprocess.Popen([sys.executable, "-m", "serving"], cwd=registered_project, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _ready(url), "the service to be ready")
        with Load(url, 80_000_000) as load:
            time.sleep(LOAD_S)
            every = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            for p in every:
                p.send_signal(signal.SIGKILL)
            psutil.wait_procs(every, timeout=10)
    finally:
        proc.kill()
        proc.wait()
    captured = {r["transaction_id"] for r in read_predictions(tmp_path / "capture")}
    answered = set(load.answered)
    print(
        f"kill -9 ({workers} worker(s)): sent {load.sent} / answered {len(answered)} / "
        f"captured {len(captured)} / failed {load.failed}; "
        f"answered but not captured: {len(answered - captured)}"
    )
    assert len(answered) > 100, "too little load to mean anything"
    assert answered - captured == set()

    # Restarted on the same files, the service gives every retry its first answer.
    proc = subprocess.Popen([sys.executable, "-m", "serving"], cwd=registered_project, env=env)
    try:
        _wait(lambda: _ready(url), "the service to be ready again")
        sample = sorted(answered)[:: max(1, len(answered) // 50)]
        with httpx.Client(base_url=url, timeout=10) as client:
            for tid in sample:
                tx = {**TX, "transaction_id": tid, "customer_id": tid % 50, "terminal_id": tid % 40}
                assert client.post("/v1/score", json=tx).json() == load.answered[tid]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert {r["transaction_id"] for r in read_predictions(tmp_path / "capture")} == captured


def test_hostile_transactions_neither_stop_capture_nor_erase_history(
    registered_project: Path, tmp_path: Path
) -> None:
    """The year 9999 (it killed the old capture thread) and a transaction in 2030 (it erased
    a customer's Redis history) are refused; capture goes on and the windows stay whole."""
    port = free_port()
    env = _env(tmp_path, port, workers=1)
    proc = subprocess.Popen([sys.executable, "-m", "serving"], cwd=registered_project, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _ready(url), "the service to be ready")
        with httpx.Client(base_url=url, timeout=10) as client:
            tx = {**TX, "transaction_id": 81_000_000}
            assert client.post("/v1/score", json=tx).status_code == 200
            for when in ("9999-12-31T00:00:00", "0001-01-01T00:00:00+01:00", "2030-01-01"):
                hostile = {**tx, "transaction_id": 81_000_001, "tx_datetime": when}
                r = client.post("/v1/score", json=hostile)
                assert r.status_code == 422, r.text
            later = {**tx, "transaction_id": 81_000_002, "tx_datetime": "2018-05-11T13:00:00"}
            assert client.post("/v1/score", json=later).status_code == 200
            assert client.get("/ready").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    rows = {r["transaction_id"]: r for r in read_predictions(tmp_path / "capture")}
    assert sorted(rows) == [81_000_000, 81_000_002]
    first, second = (rows[i]["features"] for i in (81_000_000, 81_000_002))
    name = "customer_id_nb_tx_30day_window"
    assert second[name] == first[name] + 1  # the first is still in the window
