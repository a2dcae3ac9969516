"""A stranger's first hour, as they meet it: lineage that notices a replaced data file or an
edited shared module, a `make run` that stops when told and leaves the pipeline as it was,
and a `make run` that succeeds from a fresh clone with an empty HOME on a busy machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.conftest import TINY, TINY_FLOORS, copy_project, run, set_config

pytestmark = pytest.mark.integration

VENV_BIN = str(Path(sys.executable).parent)


def _dvc_status(root: Path) -> str:
    return run(root, sys.executable, "-m", "dvc", "status")


def _commit(root: Path, message: str) -> None:
    run(root, "git", "add", "-A")
    run(
        root, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message
    )


def test_a_replaced_source_file_reruns_generate(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "p", TINY)
    run(root, sys.executable, "-m", "pipelines", "generate")
    source = root / "data/external/payments.parquet"
    source.parent.mkdir(parents=True)
    pd.read_parquet(root / "data/raw/transactions.parquet").to_parquet(source)
    set_config(root, {"source.kind": "file", "source.path": "data/external/payments.parquet"})
    run(root, sys.executable, "-m", "dvc", "repro", "generate")
    assert "generate" not in _dvc_status(root)

    frame = pd.read_parquet(source)
    frame.iloc[: len(frame) - 1000].to_parquet(source)  # the same path, 1,000 rows fewer
    status = _dvc_status(root)
    assert "generate:" in status, status
    assert "modified:           data/external/payments.parquet" in status, status
    out = run(root, sys.executable, "-m", "dvc", "repro", "generate")
    assert "didn't change, skipping" not in out
    assert len(pd.read_parquet(root / "data/raw/transactions.parquet")) == len(frame) - 1000


def test_editing_a_shared_module_reruns_the_stages_that_import_it(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "p", TINY)
    run(root, sys.executable, "-m", "dvc", "repro", "features")
    with (root / "pipelines/schema.py").open("a") as f:
        f.write("\n# an edit\n")
    status = _dvc_status(root)
    for stage in ("generate:", "validate:", "features:"):
        assert stage in status, status
    assert "modified:           pipelines/schema.py" in status


@contextmanager
def _busy_cores(n: int, seconds: int) -> Iterator[None]:
    """`n` busy loops (bounded by `timeout`), always stopped."""
    loops = [
        subprocess.Popen(
            ["timeout", str(seconds), "sh", "-c", "while :; do :; done"], start_new_session=True
        )
        for _ in range(n)
    ]
    try:
        yield
    finally:
        for loop in loops:  # the group: SIGKILL to `timeout` alone would leave its shell
            os.killpg(loop.pid, signal.SIGKILL)
            loop.wait()


def _make_run(root: Path, home: Path) -> subprocess.Popen[str]:
    """`make run` as the README says it, with the environment already installed (`-o install`:
    the clone's own `make install` is what the slow test below runs)."""
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": "",
    }
    for name in ("PREFECT_HOME", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"):
        env.pop(name, None)  # what the command itself must set
    return subprocess.Popen(
        ["make", "-o", "install", "run", "RUN="],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_for(proc: subprocess.Popen[str], line: str, log: list[str], timeout: float) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = proc.stdout.readline()
        if not text and proc.poll() is not None:
            break
        log.append(text)
        if line in text:
            return
    pytest.fail(f"never saw {line!r}:\n{''.join(log[-40:])}")


@pytest.mark.slow
def test_sigterm_stops_make_run_and_leaves_the_pipeline_as_it_was(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "p", {**TINY, **TINY_FLOORS})
    home = tmp_path / "home"
    home.mkdir()
    first = _make_run(root, home)
    out, _ = first.communicate(timeout=900)
    assert first.returncode == 0, out[-3000:]
    set_config(root, {"generate.seed": 7})  # the next run has work to do from the first stage
    _commit(root, "a new seed")
    status, config = _dvc_status(root), (root / "configs/pipeline.yaml").read_bytes()
    files = {p: p.read_bytes() for p in [root / "dvc.lock", *sorted((root / "metrics").iterdir())]}

    proc = _make_run(root, home)
    log: list[str] = []
    _wait_for(proc, "Running stage 'features'", log, timeout=600)
    tree = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)  # to make alone, as `kill <pid>` does
    rest, _ = proc.communicate(timeout=30)
    took = time.monotonic() - started
    left = [
        pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
    ]

    assert took < 10, f"stopped after {took:.1f} s\n{rest[-3000:]}"
    assert proc.returncode != 0
    assert not left, f"left running: {left}"
    assert (root / "configs/pipeline.yaml").read_bytes() == config
    assert {p: p.read_bytes() for p in files} == files, "dvc.lock or metrics changed"
    assert _dvc_status(root) == status
    assert run(root, "git", "status", "--porcelain", "configs/").strip() == ""
    assert "SIGTERM: run stopped" in rest


@pytest.mark.slow
def test_a_fresh_clone_runs_with_an_empty_home_on_a_busy_machine(tmp_path: Path) -> None:
    """The stranger's first run: a fresh clone, an empty HOME, both cores busy, `make run`
    including its own install. The uv cache is the machine's (UV_CACHE_DIR) only so the test
    does not download the whole environment again; nothing else is given to the command."""
    origin = copy_project(tmp_path / "origin", {**TINY, **TINY_FLOORS})
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(origin), str(clone))
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))},
        "HOME": str(home),
        "CI": "true",
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache/uv")),
    }
    env.pop("VIRTUAL_ENV", None)
    uv = shutil.which("uv") or str(Path(sys.executable).parents[2] / ".tools/bin/uv")
    if Path(uv).exists():
        env["UV"] = uv  # the uv the user has; without it `make` bootstraps one from PyPI
    started = time.monotonic()
    with _busy_cores(2, seconds=1800):
        done = subprocess.run(
            ["make", "run"],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    took = time.monotonic() - started
    assert done.returncode == 0, f"after {took:.0f} s\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "champion: version 1" in done.stdout
    assert (clone / ".prefect").is_dir(), "Prefect's home is the project's"
    assert not (home / ".prefect").exists(), "nothing in the user's ~/.prefect"
    assert run(clone, "git", "status", "--porcelain", "configs/").strip() == ""


def test_a_local_api_that_does_not_start_is_one_line(tmp_path: Path) -> None:
    """Past the start-up limit, the user reads what happened and what to do, not a traceback."""
    root = copy_project(tmp_path / "p", TINY)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.flows", "training"],
        cwd=root,
        env={**os.environ, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: Prefect's temporary local API did not start within 1 s "
        "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS); the machine may be busy: run again, "
        "raise the limit, or run against a server (make up, then PREFECT_API_URL)"
    ]
    assert "Traceback" not in done.stderr
