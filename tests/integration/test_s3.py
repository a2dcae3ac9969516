"""The scale path's storage on a real S3 endpoint (moto's server on loopback): the DVC remote,
MLflow's artifact store, and the scoring service loading the champion from it.

Only settings change, as docs/scale.md says: the DVC remote (`dvc remote add` and `modify
endpointurl`), the MLflow server's artifacts destination (`FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION`,
the endpoint from `MLFLOW_S3_ENDPOINT_URL`), credentials from `AWS_*` variables.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from serving.settings import Settings
from stack import processes
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
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata look-up either
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

    mode: str  # proxied: only the server holds credentials; direct: every client does
    url: str
    root: Path
    prefix: str
    registered: str


CLIENT_S3 = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL")


def _direct(argv: list[str], root: str) -> list[str]:
    """The server command with clients reading and writing the bucket themselves (boto3 in
    the pipelines and serving extras, `AWS_*` and `MLFLOW_S3_ENDPOINT_URL` on each client)."""
    at = argv.index("--serve-artifacts")
    return [*argv[:at], "--no-serve-artifacts", "--default-artifact-root", root, *argv[at + 3 :]]


@contextmanager
def _server(argv: list[str], env: dict[str, str], root: Path, url: str) -> Iterator[None]:
    """The server, started and stopped as `make up` and `make down` do, until the block ends;
    afterwards none of its processes (workers, job consumers) runs."""
    proc = processes.start(root / ".run", "mlflow", argv, env, root)
    log = processes.log_file(root / ".run", "mlflow")
    try:
        _wait(lambda: http_ok(f"{url}/health") or not proc.is_running(), 120)
        assert proc.is_running(), log.read_text()[-3000:]
        yield
    finally:
        tree = [proc, *proc.children(recursive=True)]
        processes.stop([proc], timeout_s=20)
        assert not [p.pid for p in tree if p.is_running() and p.status() != "zombie"]


@pytest.fixture(scope="module", params=["proxied", "direct"])
def registry(
    request: pytest.FixtureRequest,
    s3: S3,
    project: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Registry]:
    """The stack's own MLflow server command (SQLite backend) with its artifacts on the bucket
    (proxied: the server's artifacts destination; direct: its default artifact root); then the
    project's real `register` against it (version 1, champion)."""
    mode, root = str(request.param), tmp_path_factory.mktemp("mlflow-server")
    prefix = f"mlflow-{mode}"
    environ = {
        "FRAUDOPS_MLFLOW_PORT": str(free_port()),
        "FRAUDOPS_SERVING_SERVER__PORT": "8000",
        "FRAUDOPS_MLFLOW_ARTIFACTS_DESTINATION": f"s3://{BUCKET}/{prefix}",
    }
    settings = load_stack_settings(root, environ)
    mlflow = next(svc for svc in services(settings, "unused") if svc.name == "mlflow")
    argv = mlflow.argv if mode == "proxied" else _direct(mlflow.argv, f"s3://{BUCKET}/{prefix}")
    with _server(argv, {**mlflow.env, **_s3_env()}, root, settings.mlflow_url):
        with pytest.MonkeyPatch.context() as mp:
            for name in CLIENT_S3 if mode == "proxied" else ():
                mp.delenv(name)  # the client has no way to the bucket but the server
            register = (sys.executable, "-m", "pipelines", "register")
            out = run(project, *register, env={"MLFLOW_TRACKING_URI": settings.mlflow_url})
        assert "champion: None -> 1" in out, out
        yield Registry(mode, settings.mlflow_url, root, f"{prefix}/", out)


def _s3_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "MLFLOW_S3_"))}


def _wait(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not ready after {timeout:.0f} s"
        time.sleep(0.25)


def test_a_training_runs_artifacts_land_in_the_bucket(s3: S3, registry: Registry) -> None:
    keys = s3.keys(registry.prefix)
    names = {key.rsplit("/", 1)[-1] for key in keys}
    # The model as MLflow logged it, and the run's own files (metrics, plots, reports).
    assert {"MLmodel", "model.skops", "requirements.txt"} <= names, keys
    assert len(keys) > len({"MLmodel", "model.skops", "requirements.txt"})
    # Nothing on the server's disk: the bucket holds it all.
    files = [p.relative_to(registry.root) for p in registry.root.rglob("*") if p.is_file()]
    state = [str(p) for p in files if p.parent.name != "logs" and p.suffix != ".pid"]
    assert state == [".run/mlflow/mlflow.db"], files


def test_the_scoring_service_loads_the_champion_from_the_bucket(
    s3: S3, registry: Registry, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make: Callable[..., Settings] = serving_settings_in(project, tmp_path, monkeypatch)
    for name in CLIENT_S3 if registry.mode == "proxied" else ():
        monkeypatch.delenv(name)
    settings = make({"MLFLOW_TRACKING_URI": registry.url})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        model = client.get("/v1/model").json()
        assert (model["name"], model["version"]) == (MODEL_NAME, 1), model
        scored = client.post("/v1/score", json=TX)
    assert scored.status_code == 200, scored.text
    assert scored.json()["model_version"] == 1
    assert 0 <= scored.json()["fraud_probability"] <= 1
