"""Section `serving`: the scoring service against `mlflow models serve`, side by side.

Both serve the same registered version from the same MLflow store, on 127.0.0.1, one worker
each. Ours takes raw transactions (online features, capture included); MLflow's is given
the features directly, so it does strictly less work per request.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from benchmarks.context import Context, project_copy
from benchmarks.measure import REPO_ROOT
from benchmarks.openloop import OpenLoopResult, run_process
from benchmarks.report import SectionResult
from benchmarks.servers import cpu_seconds, free_port, server, settle
from benchmarks.serving_report import BATCH_CONNECTIONS, Figures, Plan, report
from benchmarks.wrk import Load, wrk
from pipelines.config import load_project_config

FULL = Plan(wrk_s=10, rate=500, open_s=25, warmup_s=5, floor_s=10, rounds=3, starts=3)
QUICK = Plan(wrk_s=3, rate=500, open_s=5, warmup_s=1, floor_s=3, rounds=1, starts=1)
BATCH_ROWS = 1000
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


WORKERS = "FRAUDOPS_SERVING_SERVER__WORKERS"


def _env(root: Path, tmp: Path) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {
        **os.environ,
        "PATH": path,  # `mlflow models serve` execs `uvicorn` from PATH
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/.mlflow/mlflow.db",
        "FRAUDOPS_SERVING_SERVER__HOST": "127.0.0.1",
        WORKERS: "1",
        "FRAUDOPS_SERVING_CAPTURE__DIR": str(tmp / "capture"),
        "FRAUDOPS_SERVING_ONLINE_STORE__SQLITE_PATH": str(tmp / "online.db"),
        "OMP_NUM_THREADS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }


def _ours(
    root: Path, env: dict[str, str], port: int
) -> tuple[list[str], Path, dict[str, str], str]:
    """Ours, configured by the environment only: command, folder, environment, ready URL."""
    env = {**env, "FRAUDOPS_SERVING_SERVER__PORT": str(port)}
    return [sys.executable, "-m", "serving"], root, env, f"http://127.0.0.1:{port}/ready"


def _theirs(root: Path, port: int) -> list[str]:
    model = load_project_config(root / "configs/project.yaml").registered_model_name
    serve = ["models", "serve", "-m", f"models:/{model}@champion", "--env-manager", "local"]
    return [sys.executable, "-m", "mlflow", *serve, "--host", "127.0.0.1", "--port", str(port)]


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


def _transactions(path: Path, n: int, ordered: bool) -> Path:
    """`n` distinct single transactions, one JSON body a line (ids apart from wrk's).

    `ordered`: in time order, 2 ms apart from just after the seeded history (what a payment
    system sends). Otherwise each request jumps to another day of a 28-day span (as wrk's
    script does), so most arrive weeks before the newest one the store has seen: the worst
    case for its timelines."""
    rng = random.Random(16)
    start = dt.datetime(2018, 10, 1)
    with path.open("w") as out:
        for i in range(n):
            if ordered:
                when = (start + dt.timedelta(milliseconds=2 * i)).isoformat()
            else:
                when = f"2018-10-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}"
            tx = {
                "transaction_id": (500 + ordered) * 10**12 + i,
                "tx_datetime": when,
                "customer_id": rng.randrange(5000),
                "terminal_id": rng.randrange(10000),
                "tx_amount": round(rng.random() * 150, 2),
            }
            out.write(json.dumps(tx) + "\n")
    return path


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


def _floor(plan: Plan) -> OpenLoopResult:
    """The generator against a trivial responder: what it adds itself."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    responder = [sys.executable, "-m", "benchmarks.responder", str(port)]
    with server(responder, REPO_ROOT, dict(os.environ), url):
        return run_process(url, None, plan.rate, plan.floor_s, 1.0)


def _open_loop(
    plan: Plan, tmp: Path, url: str, pid: int, ordered: bool = True
) -> tuple[OpenLoopResult, float]:
    """Ours at the offered rate, and the share of a core it used meanwhile."""
    n = round(plan.rate * (plan.warmup_s + plan.open_s))
    bodies = _transactions(tmp / f"openloop-{'ordered' if ordered else 'jumps'}.jsonl", n, ordered)
    before = cpu_seconds([pid])
    done = run_process(url, bodies, plan.rate, plan.open_s, plan.warmup_s)
    return done, (cpu_seconds([pid]) - before) / done.wall_s


def _batches(
    plan: Plan, root: Path, tmp: Path, urls: dict[str, str], pids: list[int]
) -> dict[tuple[str, int, int], Load]:
    """Rounds that alternate the servers; in each, a run at 8 and one at 2 connections.
    Ours gets new random transactions in every batch (a repeated one is answered from the
    first answers); MLflow's, the features of the last `BATCH_ROWS` rows."""
    _, theirs = _bodies(root, BATCH_ROWS)
    loads: dict[tuple[str, int, int], Load] = {}
    for k in range(plan.rounds):
        for name, url in urls.items():
            for conns in BATCH_CONNECTIONS:
                settle(pids)
                if name == "mlflow":
                    loads[name, k, conns] = wrk(url, conns, plan.wrk_s, tmp, theirs)
                else:
                    loads[name, k, conns] = wrk(url, conns, plan.wrk_s, tmp, batch_rows=BATCH_ROWS)
    return loads


def _closed(
    plan: Plan, tmp: Path, u: str, v: str, one: str, pids: list[int]
) -> list[dict[str, Load]]:
    """Rounds of wrk at 64 connections to each and at 1 connection to ours; the servers take
    turns to go first (a machine that slows down during a round slows both)."""
    runs = [
        ("ours_64", f"{u}/v1/score", 64, None),
        ("theirs_64", f"{v}/invocations", 64, one),
        ("ours_1", f"{u}/v1/score", 1, None),
    ]
    rounds = []
    for k in range(plan.rounds):
        loads = {}
        for name, url, conns, body in runs if k % 2 == 0 else runs[::-1]:
            settle(pids)
            loads[name] = wrk(url, conns, plan.wrk_s, tmp, body, threads=2 if conns > 1 else 1)
        rounds.append(loads)
    return rounds


def _measure(root: Path, tmp: Path, plan: Plan) -> Figures:
    env = _env(root, tmp)
    inproc = _in_process_p50(root, env)
    ours, theirs = free_port(), free_port()
    u, v = f"http://127.0.0.1:{ours}", f"http://127.0.0.1:{theirs}"
    _, one_theirs = _bodies(root, 1)
    with (
        server(*_ours(root, env, ours)) as (pid_ours, _),
        server(_theirs(root, theirs), root, env, f"{v}/ping") as (pid_theirs, _),
    ):
        pids = [pid_ours, pid_theirs]
        closed = _closed(plan, tmp, u, v, one_theirs, pids)
        settle(pids)
        floor = _floor(plan)
        settle(pids)
        open_, share = _open_loop(plan, tmp, f"{u}/v1/score", pid_ours)
        settle(pids)
        jumps, _ = _open_loop(plan, tmp, f"{u}/v1/score", pid_ours, ordered=False)
        urls = {"ours": f"{u}/v1/score/batch", "mlflow": f"{v}/invocations"}
        batches = _batches(plan, root, tmp, urls, pids)
        # As `make serve` runs it (configs/serving.yaml: 2 workers) against MLflow's default.
        served = free_port()
        with server(*_ours(root, {**env, WORKERS: "2"}, served)) as (pid_served, _):
            urls = {"ours_served": f"http://127.0.0.1:{served}/v1/score/batch"}
            batches |= _batches(plan, root, tmp, urls, [*pids, pid_served])
    starts = []
    for _ in range(plan.starts):
        with server(*_ours(root, env, free_port())) as (_, seconds):
            starts.append(seconds)
    return Figures(plan, inproc, closed, floor, open_, share, batches, starts, jumps)


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
    return report(_measure(root, tmp, QUICK if ctx.quick else FULL), __doc__)
