"""`python -m benchmarks.scorers`: the ways to score the project's model, one thread each.

Fits the configured estimator (`train:` in configs/pipeline.yaml, its hyper-parameters
unchanged) on one training block of simulated data at the configured scale (fewer days of
history than `make run` simulates: the block itself is the same size), or takes `--model`.
Then, in a fresh subprocess per measurement (OMP_NUM_THREADS=1 and `threadpool_limits(1)`,
as the service runs), it times scoring 1 row and 1,000 rows with `predict_proba`, with the
compiled scorer (`serving.compiled`) and with ONNX Runtime (skl2onnx, float32 and float64),
and checks each against `predict_proba` on 10,000 rows. Each figure is the median over
`--repeats` workers (run in rounds, so other load falls on every scorer alike), of each
worker's median call: wall time, and in brackets the thread's CPU time, steadier on a busy
machine. Results: docs/adr/0003-compiled-scorer.md. ONNX runs in the interpreter given by
`--onnx-python` (a scratch venv: it is not a project dependency) and is skipped, saying so,
when that interpreter cannot import onnxruntime and skl2onnx.

This module imports only the standard library and NumPy at the top: the ONNX worker runs it
in an environment without the project's packages.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

REPO_ROOT = Path(__file__).resolve().parent.parent
SCORERS = ("predict_proba", "compiled", "onnx_float32", "onnx_float64")
BATCHES = (1, 1000)
PARITY_ROWS = 10_000
CALLS = {1: 2000, 1000: 60}  # timed calls per worker (after as many warm-up calls / 10)
# History before the training block: the longest window (30 days) plus a margin.
HISTORY_DAYS = 31

Score = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def prepare(work: Path) -> None:
    """Simulate, build features, fit the configured estimator; save it and 10,000 test rows."""
    import datetime as dt

    import joblib

    from pipelines import stages
    from pipelines import train as protocol
    from pipelines.config import load_pipeline_config
    from pipelines.coverage import resolve_folds
    from pipelines.schema import feature_columns

    base = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml")
    start = base.generate.start_date + dt.timedelta(days=HISTORY_DAYS)
    delay = base.features.label_delay_days
    days = HISTORY_DAYS + base.train.train_days + delay + base.train.test_days
    names = ("raw", "clean", "quarantine", "features")
    overrides: dict[str, Any] = {f"paths.{n}": str(work / f"{n}.parquet") for n in names}
    overrides["paths.metrics"] = str(work / "metrics")
    overrides |= {"generate.n_days": days, "train.start_date": start.isoformat()}
    overrides["train.folds"] = 1
    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml", overrides)
    for stage in (stages.generate, stages.validate, stages.features):
        stage(cfg)
    fold = resolve_folds(cfg)[0]
    frame = protocol.load_folds(cfg.paths.features, [fold])
    features = feature_columns(cfg.features)
    model = protocol.fit(cfg.train, protocol.training_block(frame, fold), features)
    test = protocol.test_block(frame, fold)[features].to_numpy(np.float64)
    rows = test[np.random.default_rng(0).choice(len(test), PARITY_ROWS, replace=len(test) < 10_000)]
    joblib.dump(model, work / "model.joblib")
    np.save(work / "rows.npy", rows)
    print(
        f"model: {type(model).__name__} {cfg.train.estimator_params()}, fitted on "
        f"{len(protocol.training_block(frame, fold)):,} rows x {len(features)} features"
    )


def _onnx(model: Any, n_features: int, double: bool) -> Score:
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    kind = DoubleTensorType if double else FloatTensorType
    onx = convert_sklearn(
        model,
        initial_types=[("x", kind([None, n_features]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        onx.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    dtype = np.float64 if double else np.float32
    output = session.get_outputs()[1].name  # probabilities (zipmap off)

    def score(x: NDArray[np.float64]) -> NDArray[np.float64]:
        (proba,) = session.run([output], {"x": x.astype(dtype, copy=False)})
        return np.asarray(proba[:, 1], dtype=np.float64)

    return score


def _scorer(name: str, model: Any, n_features: int) -> Score:
    if name == "predict_proba":
        return lambda x: np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)
    if name == "compiled":
        from serving.compiled import compile_model

        compiled = compile_model(model, n_features)
        if compiled is None:
            raise SystemExit("compile_model returned None: the service would fall back")
        return compiled
    return _onnx(model, n_features, double=name == "onnx_float64")


def worker(name: str, batch: int, work: Path) -> dict[str, Any]:
    """Time one scorer on one batch size in this process, one thread; check its parity."""
    import joblib
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    # As serving/main.py: the service scores arrays with a model fitted on a frame.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    model = joblib.load(work / "model.joblib")
    rows = np.load(work / "rows.npy")
    started = time.perf_counter()
    score = _scorer(name, model, rows.shape[1])
    build_s = time.perf_counter() - started
    expected = model.predict_proba(rows)[:, 1]
    worst = float(np.max(np.abs(score(rows) - expected)))
    calls = CALLS[batch]
    starts = np.arange(calls + calls // 10) * batch % (len(rows) - batch + 1)
    wall, cpu = [], []
    for i, s in enumerate(starts):
        x = np.ascontiguousarray(rows[s : s + batch])
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        score(x)
        if i >= calls // 10:  # the first tenth warms up
            wall.append(time.perf_counter_ns() - t0)
            cpu.append(time.thread_time_ns() - c0)
    return {
        "median_s": statistics.median(wall) / 1e9,
        "cpu_s": statistics.median(cpu) / 1e9,  # this thread's CPU: less sensitive to load
        "max_abs_diff": worst,
        "build_s": build_s,
    }


def _run_worker(python: str, name: str, batch: int, work: Path) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    args = [python, "-m", "benchmarks.scorers", "--worker", name, str(batch), str(work)]
    done = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": last}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _onnx_available(python: str) -> bool:
    probe = [python, "-c", "import onnxruntime, skl2onnx"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def measure(work: Path, onnx_python: str, repeats: int) -> list[list[str]]:
    """Rows of the table: per scorer and batch, the median over `repeats` fresh workers.

    Rounds run every scorer once each, so load from other processes falls on all alike.
    """
    onnx = _onnx_available(onnx_python)
    if not onnx:
        print(f"ONNX skipped: {onnx_python} cannot import onnxruntime and skl2onnx")
    names = [n for n in SCORERS if onnx or not n.startswith("onnx")]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {(n, b): [] for n in names for b in BATCHES}
    for _ in range(repeats):
        for name, batch in runs:
            python = onnx_python if name.startswith("onnx") else sys.executable
            if not any("error" in r for r in runs[name, batch]):
                runs[name, batch].append(_run_worker(python, name, batch, work))
    return [_row(name, {b: runs[name, b] for b in BATCHES}) for name in names]


def _row(name: str, figures: dict[int, list[dict[str, Any]]]) -> list[str]:
    errors = [r["error"] for rs in figures.values() for r in rs if "error" in r]
    if errors:
        return [name, "-", "-", "-", "-", "-", f"failed: {errors[-1][-120:]}", "-"]

    def median(batch: int, key: str) -> float:
        return float(statistics.median(r[key] for r in figures[batch]))

    worst = max(r["max_abs_diff"] for rs in figures.values() for r in rs)
    return [
        name,
        f"{median(1, 'median_s') * 1e3:.3f} ({median(1, 'cpu_s') * 1e3:.3f})",
        f"{median(1000, 'median_s') * 1e3:.2f} ({median(1000, 'cpu_s') * 1e3:.2f})",
        f"{1000 / median(1000, 'median_s'):,.0f}",
        f"{1000 / median(1000, 'cpu_s'):,.0f}",
        f"{worst:.1e}",
        "yes" if worst <= 1e-9 else "no",
        f"{median(1, 'build_s'):.2f}",
    ]


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """A Markdown table of the figures."""
    headers = ["scorer", "1 row ms (CPU)", "1,000 rows ms (CPU)", "rows/s at 1,000"]
    headers += ["rows/CPU-s at 1,000", "max abs diff", "<= 1e-9", "build s"]
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main(argv: Sequence[str] | None = None) -> None:
    """Prepare the model (or take --model), measure every scorer, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scorers", description=__doc__)
    parser.add_argument("--model", type=Path, help="a fitted model (joblib) instead of fitting")
    parser.add_argument("--rows", type=Path, help="with --model: a .npy of rows to score")
    parser.add_argument("--work", type=Path, help="keep the data here (default: a temp dir)")
    parser.add_argument("--onnx-python", default=sys.executable, help="interpreter for ONNX")
    parser.add_argument("--repeats", type=int, default=3, help="fresh workers per figure")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        name, batch, work = args.worker
        print(json.dumps(worker(name, int(batch), Path(work))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.model:
            os.symlink(args.model.resolve(), work / "model.joblib")
            os.symlink(args.rows.resolve(), work / "rows.npy")
        elif not (work / "model.joblib").exists():
            prepare(work)
        print_table(measure(work, args.onnx_python, args.repeats))


if __name__ == "__main__":
    main()
