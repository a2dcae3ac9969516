"""Model lifecycle in the service: 503 before a model, hot swap, failed loads, shutdown flush,
backpressure, and the Redis backend behind the same API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from pipelines import tracking
from pipelines.promote import promote
from serving import scoring
from serving.main import create_app
from serving.settings import Settings
from tests.captures import read_predictions
from tests.conftest import MODEL_NAME
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

TX = {
    "transaction_id": 20_000_001,
    "tx_datetime": "2018-05-11T12:30:05",
    "customer_id": 7,
    "terminal_id": 11,
    "tx_amount": 57.16,
}
TOKEN = {"FRAUDOPS_ADMIN_TOKEN": "s3cret-token-of-24-chars"}
AUTH = {"Authorization": "Bearer s3cret-token-of-24-chars"}


def test_503_before_a_model_is_loaded(serving_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(serving_settings(**{"model.alias": "nobody"}))) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "no alias 'nobody'" in ready.json()["reason"]
        assert client.post("/v1/score", json=TX).status_code == 503
        assert client.get("/v1/model").status_code == 503


def test_reload_needs_the_token(serving_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(serving_settings(environ=TOKEN))) as client:
        assert client.post("/admin/reload").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.post("/admin/reload", headers=wrong).status_code == 401
        assert client.post("/admin/reload", headers=AUTH).json()["swapped"] is False


def test_hot_swap_under_load_fails_no_request(serving_settings: Callable[..., Settings]) -> None:
    tracking.connect()
    source = tracking.get_version(MODEL_NAME, 1)
    new = tracking.register(f"runs:/{source.run_id}/model", MODEL_NAME, {})  # never gated: forced
    with TestClient(create_app(serving_settings(environ=TOKEN))) as client:
        versions: list[int] = []
        failures: list[int] = []
        stop = threading.Event()

        def hammer(offset: int) -> None:
            i = 0
            while not stop.is_set():
                r = client.post("/v1/score", json={**TX, "transaction_id": offset + i})
                (
                    versions.append(r.json()["model_version"])
                    if r.status_code == 200
                    else failures.append(r.status_code)
                )
                i += 1

        threads = [
            threading.Thread(target=hammer, args=(30_000_000 + k * 100_000,)) for k in range(3)
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)
        promote(MODEL_NAME, new.version, "swap test", "tester", force=True)
        reload = client.post("/admin/reload", headers=AUTH).json()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        assert reload == {"swapped": True, "model_version": new.version, "error": None}
        assert failures == []
        assert versions[0] == 1
        assert versions[-1] == new.version
        assert set(versions) == {1, new.version}
        assert client.get("/v1/model").json()["version"] == new.version
    from pipelines.promote import rollback

    rollback(MODEL_NAME, "back after swap test", "tester")


def test_failed_load_keeps_the_old_model(
    serving_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(serving_settings(environ=TOKEN))) as client:
        served = client.get("/v1/model").json()["version"]
        monkeypatch.setattr(tracking, "alias_version", lambda name, alias: 999)
        reload = client.post("/admin/reload", headers=AUTH).json()
        assert reload["swapped"] is False
        assert "999" in reload["error"]
        assert client.post("/v1/score", json=TX).json()["model_version"] == served
        assert "fraudops_model_load_failures_total 1.0" in client.get("/metrics").text


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_an_unwritable_capture_log_refuses_to_answer_and_turns_ready_red(
    serving_settings: Callable[..., Settings],
) -> None:
    """A full disk: no answer goes out uncaptured (503, Retry-After), /ready says why, the
    transaction is not kept, and once the disk has room the same request is scored."""
    with TestClient(create_app(serving_settings())) as client:
        tx = {**TX, "transaction_id": 41_000_000}
        assert (
            client.post("/v1/score", json={**tx, "transaction_id": 41_000_001}).status_code == 200
        )
        capture = client.app.state.scorer.capture  # type: ignore[attr-defined]
        path, fd = capture._file
        full = os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC
        capture._file = (path, full)
        refused = client.post("/v1/score", json=tx)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "No space left" in refused.json()["detail"]
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "No space left" in ready.json()["reason"]
        assert _metric(client.get("/metrics").text, "fraudops_capture_failures_total") == 1
        os.close(fd)  # the next write reopens the real file: room again
        again = client.post("/v1/score", json=tx)
        assert again.status_code == 200
        assert client.get("/ready").status_code == 200
        assert _metric(client.get("/metrics").text, "fraudops_replays_total") == 0
    captured = [r["transaction_id"] for r in read_predictions(serving_settings().capture.dir)]
    assert captured.count(41_000_000) == 1


def test_a_record_that_cannot_be_encoded_is_kept_aside_and_counted(
    serving_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unencodable(columns: object) -> bytes:
        raise TypeError("unrepresentable numpy.datetime64")

    settings = serving_settings()
    with TestClient(create_app(settings)) as client:
        monkeypatch.setattr(scoring, "encode", unencodable)
        tx = {**TX, "transaction_id": 42_000_000}
        assert client.post("/v1/score", json=tx).status_code == 200
        monkeypatch.undo()
        assert (
            client.post("/v1/score", json={**tx, "transaction_id": 42_000_001}).status_code == 200
        )
        assert _metric(client.get("/metrics").text, "fraudops_capture_dropped_total") == 1
        assert client.get("/ready").status_code == 200
    kept = "".join(p.read_text() for p in (settings.capture.dir / "rejected").glob("*/*.jsonl"))
    assert "unrepresentable numpy.datetime64" in kept
    assert "42000000" in kept
    captured = [r["transaction_id"] for r in read_predictions(settings.capture.dir)]
    assert 42_000_001 in captured


def test_redis_backend_behind_the_api(
    serving_settings: Callable[..., Settings], redis_url: str
) -> None:
    settings = serving_settings(
        environ={"FRAUDOPS_REDIS_URL": redis_url}, **{"online_store.backend": "redis"}
    )
    with TestClient(create_app(settings)) as client:
        first = client.post("/v1/score", json=TX).json()
        again = client.post("/v1/score", json=TX).json()
        assert first["fraud_probability"] == again["fraud_probability"]
        assert (
            client.post(
                "/v1/labels",
                json={"labels": [{"transaction_id": TX["transaction_id"], "tx_fraud": 1}]},
            ).json()["matched"]
            == 1
        )


def test_sigterm_flushes_every_capture(registered_project: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FRAUDOPS_SERVING_SERVER__PORT": str(port),
        "FRAUDOPS_SERVING_SERVER__WORKERS": "1",
        "FRAUDOPS_SERVING_CAPTURE__DIR": str(tmp_path / "capture"),
        "FRAUDOPS_SERVING_ONLINE_STORE__SQLITE_PATH": str(tmp_path / "online.db"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "serving"], cwd=registered_project, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        for i in range(30):
            httpx.post(f"{url}/v1/score", json={**TX, "transaction_id": 50_000_000 + i})
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal: exit status -15.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        proc.kill()
    assert len(read_predictions(tmp_path / "capture")) == 30


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service exited"
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout} s")


def test_the_service_follows_the_alias_by_polling(
    serving_settings: Callable[..., Settings],
) -> None:
    tracking.connect()
    source = tracking.get_version(MODEL_NAME, 1)
    new = tracking.register(f"runs:/{source.run_id}/model", MODEL_NAME, {})  # never gated: forced
    try:
        with TestClient(create_app(serving_settings(**{"model.poll_interval_s": 0.2}))) as client:
            assert client.get("/v1/model").json()["version"] == 1
            promote(MODEL_NAME, new.version, "poll test", "tester", force=True)
            deadline = time.monotonic() + 10
            while client.get("/v1/model").json()["version"] != new.version:
                assert time.monotonic() < deadline, "the poller never picked up the new champion"
                time.sleep(0.1)
            assert client.post("/v1/score", json=TX).json()["model_version"] == new.version
    finally:
        from pipelines.promote import rollback

        rollback(MODEL_NAME, "back after poll test", "tester")


def test_metrics_add_up_across_worker_processes(registered_project: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FRAUDOPS_SERVING_SERVER__PORT": str(port),
        "FRAUDOPS_SERVING_SERVER__WORKERS": "2",
        "FRAUDOPS_SERVING_CAPTURE__DIR": str(tmp_path / "capture"),
        "FRAUDOPS_SERVING_ONLINE_STORE__SQLITE_PATH": str(tmp_path / "online.db"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "serving"], cwd=registered_project, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        time.sleep(2)  # both workers up
        with httpx.Client() as http:  # new connections spread over the workers
            for i in range(40):
                http.post(
                    f"{url}/v1/score",
                    json={**TX, "transaction_id": 60_000_000 + i},
                    headers={"Connection": "close"},
                )
            text = http.get(f"{url}/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    line = next(
        x
        for x in text.splitlines()
        if x.startswith('fraudops_requests_total{route="/v1/score",status="200"}')
    )
    assert float(line.split()[-1]) == 40.0
