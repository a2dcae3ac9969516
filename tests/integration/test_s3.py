"""The scale path's storage on a real S3 endpoint (moto's server on loopback): the DVC remote,
MLflow's artifact store, and the scoring service loading the champion from it.

Only settings change, as docs/scale.md says: the DVC remote (`dvc remote add` and `modify
endpointurl`), the MLflow server's artifacts destination (`FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION`,
the endpoint from `MLFLOW_S3_ENDPOINT_URL`), credentials from `AWS_*` variables.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from serving.settings import Settings
from stack.services import http_ok, services
from stack.settings import load_stack_settings
from tests.conftest import MODEL_NAME, TINY, TINY_FLOORS, copy_project, run
from tests.integration.conftest import free_port, serving_settings_in
from tests.integration.test_serving_api import TX

pytestmark = [pytest.mark.integration, pytest.mark.s3, pytest.mark.timeout(600)]

BUCKET = "fraudops"


@dataclass(frozen=True)
class S3:
    """The endpoint and a client that lists what landed in the bucket."""

    endpoint: str
    client: Any

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """moto's S3 server on a free loopback port with one bucket; credentials and endpoint
    reach every client (DVC, MLflow, boto3, subprocesses) through the environment only."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    none = tmp_path_factory.mktemp("aws") / "none"  # no ~/.aws profile is read
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(none))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(none))
        mp.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        try:
            yield S3(endpoint, client)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project after `dvc repro` (its stages need no MLflow)."""
    root = copy_project(tmp_path_factory.mktemp("s3-project"), {**TINY, **TINY_FLOORS})
    run(root, sys.executable, "-m", "dvc", "repro", env={"MLFLOW_TRACKING_URI": ""})
    return root


def _cached_outputs(root: Path) -> dict[str, str]:
    """Every output of the pipeline that DVC caches (and so pushes), path -> md5."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        outs = [out for out in repo.index.outs if out.use_cache]
        return {os.path.relpath(out.fs_path, root): str(out.hash_info.value) for out in outs}


def _contents(root: Path, paths: Iterable[str]) -> dict[str, bytes]:
    """The bytes of every file of `paths` (files or folders)."""
    files = [p for name in paths for p in [root / name, *(root / name).rglob("*")] if p.is_file()]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_dvc_push_and_pull_round_trip_through_the_bucket(
    s3: S3, project: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(project, tmp_path / "project", symlinks=True))
    dvc = (sys.executable, "-m", "dvc")
    # The documented commands (docs/scale.md): the endpoint is the only non-AWS setting.
    run(root, *dvc, "remote", "add", "-d", "storage", f"s3://{BUCKET}/dvc")
    run(root, *dvc, "remote", "modify", "storage", "endpointurl", s3.endpoint)
    outputs = _cached_outputs(root)
    assert any(md5.endswith(".dir") for md5 in outputs.values())  # folders too (online seed)
    before = _contents(root, outputs)
    run(root, *dvc, "push")

    stored = set(s3.keys("dvc/"))
    for md5 in outputs.values():
        assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}" in stored

    shutil.rmtree(root / ".dvc/cache")
    for path in map(root.joinpath, outputs):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert not _contents(root, outputs)
    run(root, *dvc, "pull")
    assert _contents(root, outputs) == before


@dataclass(frozen=True)
class Registry:
    """An MLflow server with its artifacts in the bucket, and what registering printed."""

    url: str
    root: Path
    registered: str


@pytest.fixture(scope="module")
def registry(s3: S3, project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The stack's own MLflow server command (SQLite backend) with its artifacts destination
    on the bucket; then the project's real `register` against it (version 1, champion)."""
    server_root = tmp_path_factory.mktemp("mlflow-server")
    environ = {
        "FRAUDOPS_MLFLOW_PORT": str(free_port()),
        "FRAUDOPS_SERVING_SERVER__PORT": "8000",
        "FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION": f"s3://{BUCKET}/mlflow",
    }
    settings = load_stack_settings(server_root, environ)
    mlflow = next(svc for svc in services(settings, "unused") if svc.name == "mlflow")
    log = (server_root / "mlflow.log").open("wb")
    proc = subprocess.Popen(
        mlflow.argv,
        cwd=server_root,
        env={**mlflow.env, **_s3_env()},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait(lambda: http_ok(f"{settings.mlflow_url}/health") or proc.poll() is not None, 120)
        assert proc.poll() is None, (server_root / "mlflow.log").read_text()[-3000:]
        out = run(
            project,
            sys.executable,
            "-m",
            "pipelines",
            "register",
            env={"MLFLOW_TRACKING_URI": settings.mlflow_url},
        )
        assert "champion: None -> 1" in out, out
        yield Registry(settings.mlflow_url, server_root, out)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
        _wait(lambda: not _group_alive(proc.pid), 10)  # its workers too: nothing left running


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _s3_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "MLFLOW_S3_"))}


def _wait(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not ready after {timeout:.0f} s"
        time.sleep(0.25)


def test_a_training_runs_artifacts_land_in_the_bucket(s3: S3, registry: Registry) -> None:
    keys = s3.keys("mlflow/")
    names = {key.rsplit("/", 1)[-1] for key in keys}
    # The model as MLflow logged it, and the run's own files (metrics, plots, reports).
    assert {"MLmodel", "model.skops", "requirements.txt"} <= names, keys
    assert len(keys) > len({"MLmodel", "model.skops", "requirements.txt"})
    # Nothing on the server's disk: it proxies the bucket.
    on_disk = [p for p in registry.root.rglob("*") if p.is_file() and p.suffix != ".log"]
    assert [p.name for p in on_disk] == ["mlflow.db"], on_disk


def test_the_scoring_service_loads_the_champion_from_the_bucket(
    s3: S3, registry: Registry, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make: Callable[..., Settings] = serving_settings_in(project, tmp_path, monkeypatch)
    settings = make({"MLFLOW_TRACKING_URI": registry.url})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        model = client.get("/v1/model").json()
        assert (model["name"], model["version"]) == (MODEL_NAME, 1), model
        scored = client.post("/v1/score", json=TX)
    assert scored.status_code == 200, scored.text
    assert scored.json()["model_version"] == 1
    assert 0 <= scored.json()["fraud_probability"] <= 1
