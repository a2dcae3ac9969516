"""Section `serving`: the scoring service against `mlflow models serve`, side by side.

Both serve the same registered version from the same MLflow store, on 127.0.0.1, loaded by
wrk for a bounded time. Ours takes raw transactions (online features, capture included);
MLflow's is given the features directly, so it does strictly less work per request.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from benchmarks.context import Context, project_copy
from benchmarks.report import SectionResult, Target, now_utc, table, targets_table
from benchmarks.wrk import Load, wrk
from pipelines.config import load_project_config

SECONDS = 10
# Batches are loaded at 8 connections, which our supervisor shares evenly among the workers
# (serving/workers.py). MLflow gets its best of 2 and 8 connections.
BATCH_CONNECTIONS = 8
# Batch throughput moves by a quarter between runs here, MLflow's more than ours: the
# target compares medians over rounds that alternate the two servers.
BATCH_ROUNDS = 3
# Each load starts once both servers are idle: under 5 % of a core over half a second.
QUIET, SETTLE_WINDOW_S, SETTLE_TIMEOUT_S = 0.05, 0.5, 60.0
IN_PROCESS = """
import datetime as dt, json, statistics, sys, time
from fastapi.testclient import TestClient
from serving.main import create_app
from serving.schemas import Transaction
app = create_app()
with TestClient(app):
    scorer, times = app.state.scorer, []
    for i in range(3000):
        when = dt.datetime(2018, 10, 2, i % 24, i % 60)
        tx = Transaction(transaction_id=9_000_000_000 + i, tx_datetime=when,
                         customer_id=i % 5000, terminal_id=i % 10000, tx_amount=42.0)
        t = time.perf_counter(); scorer.score([tx]); times.append(time.perf_counter() - t)
    print(json.dumps({"p50_ms": statistics.median(times[500:]) * 1000}))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(root: Path, tmp: Path) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {
        **os.environ,
        "PATH": path,  # `mlflow models serve` execs `uvicorn` from PATH
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/.mlflow/mlflow.db",
        "FRAUDOPS_SERVING_CAPTURE__DIR": str(tmp / "capture"),
        "FRAUDOPS_SERVING_ONLINE_STORE__SQLITE_PATH": str(tmp / "online.db"),
        "OMP_NUM_THREADS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }


def _cpu_seconds(pids: list[int]) -> float:
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


def _settle(pids: list[int]) -> None:
    """Until both servers are idle: a load starts neither while one still works off the
    previous one (MLflow finishing requests queued at 64 connections, ours compacting)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    before = _cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_WINDOW_S)
        after = _cpu_seconds(pids)
        if after - before < QUIET * SETTLE_WINDOW_S:
            return
        before = after


@contextmanager
def _server(args: list[str], root: Path, env: dict[str, str], ready: str) -> Iterator[int]:
    proc = subprocess.Popen(
        args, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while (
            subprocess.run(["curl", "-sf", "-o", "/dev/null", ready], check=False).returncode != 0
        ):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args} did not become ready")
            time.sleep(0.5)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _bodies(root: Path, rows: int) -> tuple[str, str]:
    """A batch of raw transactions (ours) and the same rows as features (MLflow's)."""
    import pandas as pd

    from pipelines.config import load_pipeline_config
    from pipelines.schema import feature_columns

    names = feature_columns(load_pipeline_config(root / "configs/pipeline.yaml").features)
    frame = pd.read_parquet(root / "data/processed/features.parquet").tail(rows)
    raw = frame[["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]]
    txs = json.loads(raw.to_json(orient="records", date_format="iso"))
    data = frame[names].astype(float).to_numpy().tolist()
    features = {"dataframe_split": {"columns": names, "data": data}}
    return json.dumps({"transactions": txs}), json.dumps(features)


def _in_process_p50(root: Path, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", IN_PROCESS],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["p50_ms"])


def _measure(root: Path, tmp: Path) -> tuple[dict[str, Load | float], dict[str, list[int]]]:
    env = _env(root, tmp)
    ours, theirs = _port(), _port()
    one_ours, one_theirs = _bodies(root, 1)
    batch_ours, batch_theirs = _bodies(root, 1000)
    results: dict[str, Load | float] = {"in_process_p50_ms": _in_process_p50(root, env)}
    splits: dict[str, list[int]] = {}
    serve_ours = [sys.executable, "-m", "serving"]
    env_ours = {**env, "FRAUDOPS_SERVING_SERVER__PORT": str(ours)}
    model = load_project_config(root / "configs/project.yaml").registered_model_name
    serve_theirs = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{model}@champion",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(theirs),
    ]
    u, v = f"http://127.0.0.1:{ours}", f"http://127.0.0.1:{theirs}"
    with (
        _server(serve_ours, root, env_ours, f"{u}/ready") as pid_ours,
        _server(serve_theirs, root, env, f"{v}/ping") as pid_theirs,
    ):

        def load(
            url: str,
            conns: int,
            body: str | None = None,
            threads: int = 1,
            split: list[int] | None = None,
        ) -> Load:
            """One wrk run once both servers are idle; `split` gets how our workers shared it."""
            _settle([pid_ours, pid_theirs])
            if split is None:
                return wrk(url, conns, SECONDS, tmp, body, threads=threads)
            with _split_of(ours) as seen:
                done = wrk(url, conns, SECONDS, tmp, body, threads=threads)
            split.extend(seen)
            return done

        results["ours_64"] = load(f"{u}/v1/score", 64, threads=2)
        results["theirs_64"] = load(f"{v}/invocations", 64, one_theirs, threads=2)
        results["ours_8"] = load(f"{u}/v1/score", 8, split=splits.setdefault("ours_8", []))
        results["ours_1"] = load(f"{u}/v1/score", 1)
        for k in range(BATCH_ROUNDS):
            results[f"ours_batch_{k}"] = load(
                f"{u}/v1/score/batch",
                BATCH_CONNECTIONS,
                batch_ours,
                split=splits.setdefault(f"ours_batch_{k}", []),
            )
            for conns in (BATCH_CONNECTIONS, 2):
                results[f"theirs_batch_{k}_{conns}"] = load(f"{v}/invocations", conns, batch_theirs)
    del one_ours
    return results, splits


@contextmanager
def _split_of(port: int) -> Iterator[list[int]]:
    """How the connections to `port` are spread over the server's processes, a few seconds
    into the load (a check on the balancing: with uneven shares, one worker's queue sets
    the tail latency)."""
    split: list[int] = []

    def look() -> None:
        time.sleep(3)
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        split.extend(sorted(Counter(re.findall(r"pid=(\d+)", out)).values(), reverse=True))

    watcher = threading.Thread(target=look, daemon=True)
    watcher.start()
    try:
        yield split
    finally:
        watcher.join()


def _row(name: str, load: Load, rows_per_request: int = 1) -> tuple[str, ...]:
    return (
        name,
        f"{load.requests:,}",
        f"{load.rps * rows_per_request:,.0f}",
        str(load.errors),
        f"{load.p50_ms:.2f}",
        f"{load.p99_ms:.2f}",
    )


def run(ctx: Context) -> SectionResult:
    """Serve the champion both ways and load each in turn."""
    root = project_copy(ctx)
    if not (root / ".mlflow/mlflow.db").exists():  # no champion yet: run the lifecycle first
        subprocess.run(
            [sys.executable, "-m", "pipelines.flows", "lifecycle"],
            cwd=root,
            env={**os.environ, "MLFLOW_TRACKING_URI": ""},
            check=True,
            capture_output=True,
        )
    tmp = ctx.scratch("serving")
    tmp.mkdir(exist_ok=True)
    r, splits = _measure(root, tmp)
    loads = {k: v for k, v in r.items() if isinstance(v, Load)}
    inproc = float(r["in_process_p50_ms"])  # type: ignore[arg-type]
    rps_ratio = loads["ours_64"].rps / loads["theirs_64"].rps
    rounds = range(BATCH_ROUNDS)
    ours_batch = statistics.median(loads[f"ours_batch_{k}"].rps for k in rounds)
    theirs_batch = statistics.median(
        max(loads[f"theirs_batch_{k}_{c}"].rps for c in (BATCH_CONNECTIONS, 2)) for k in rounds
    )
    batch_ratio = ours_batch / theirs_batch
    gap = loads["ours_1"].p50_ms - inproc
    targets = [
        Target(
            "/v1/score req/s vs mlflow models serve, 64 connections",
            ">= 15x",
            f"{rps_ratio:.1f}x",
            rps_ratio >= 15,
        ),
        Target(
            "/v1/score errors at 64 connections",
            "0",
            str(loads["ours_64"].errors),
            loads["ours_64"].errors == 0,
        ),
        Target(
            "/v1/score p99 at 8 connections",
            "< 10 ms",
            f"{loads['ours_8'].p99_ms:.2f} ms",
            loads["ours_8"].p99_ms < 10,
        ),
        Target(
            "/v1/score p50 at 1 connection minus in-process p50",
            "<= 0.5 ms",
            f"{gap:.2f} ms ({loads['ours_1'].p50_ms:.2f} - {inproc:.2f})",
            gap <= 0.5,
        ),
        Target(
            "/v1/score/batch rows/s vs mlflow, 1,000 rows (medians)",
            ">= 4x",
            f"{batch_ratio:.1f}x ({1000 * ours_batch:,.0f} vs {1000 * theirs_batch:,.0f})",
            batch_ratio >= 4,
        ),
    ]
    rows = [
        _row("ours /v1/score, 64 conn", loads["ours_64"]),
        _row("mlflow /invocations (features given), 64 conn", loads["theirs_64"]),
        _row(
            f"ours /v1/score, 8 conn (per worker: {'/'.join(map(str, splits['ours_8'])) or '?'})",
            loads["ours_8"],
        ),
        _row("ours /v1/score, 1 conn", loads["ours_1"]),
    ]
    for k in rounds:
        split = "/".join(map(str, splits[f"ours_batch_{k}"])) or "?"
        rows.append(
            _row(
                f"round {k + 1}: ours /v1/score/batch x1000, {BATCH_CONNECTIONS} conn "
                f"(per worker: {split})",
                loads[f"ours_batch_{k}"],
                1000,
            )
        )
        for c in (BATCH_CONNECTIONS, 2):
            load = loads[f"theirs_batch_{k}_{c}"]
            rows.append(_row(f"round {k + 1}: mlflow /invocations x1000, {c} conn", load, 1000))
    body = [
        f"Measured {now_utc()}. {__doc__.split(chr(10), 2)[2].strip()} Ours: `python -m "
        f"serving` with 2 workers (configs/serving.yaml; it listens once both are ready and "
        f"hands each connection to the worker holding the fewest), SQLite online store, "
        f"capture on. "
        f"MLflow: `mlflow models serve --env-manager local` (its default, one worker). wrk "
        f"{SECONDS} s per row, one after the other, each once both servers are idle (under "
        f"{QUIET:.0%} of a core for {SETTLE_WINDOW_S} s); in-process p50 = the median of "
        f"`Scorer.score` on one transaction, {inproc:.3f} ms. Batches: the same 1,000 "
        f"transactions in every request, {BATCH_CONNECTIONS} connections (the split over "
        f"our workers is shown), in {BATCH_ROUNDS} rounds that "
        f"alternate the servers; the target compares the median of our rounds with the "
        f"median of MLflow's, each round counting MLflow's better run of "
        f"{BATCH_CONNECTIONS} and 2 connections.",
        table(("Run", "Requests", "Rows/s", "Errors", "p50 ms", "p99 ms"), rows),
        "### Targets",
        targets_table(targets),
    ]
    return SectionResult("\n\n".join(body), targets)
