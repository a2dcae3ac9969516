"""The measuring child process: runs one task, prints its measurement as JSON on stdout.

Usage: `python -m benchmarks.worker TASK 'JSON-ARGS'`. Imports and config loading come
first; only the work is timed. The last line of stdout is a JSON object: wall seconds and
CPU seconds (user + sys of this process, all threads) of the timed section, `ru_maxrss` of
this process at its end (peak memory, interpreter and imports included) and at its start
(after imports), the CPU seconds the rest of the machine used meanwhile (from /proc/stat),
plus task figures such as the row count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import importlib.util
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from benchmarks.measure import REPO_ROOT
from pipelines.config import PipelineConfig, load_pipeline_config, load_project_config

CONFIG_FILE = "configs/pipeline.yaml"
PIPELINE_CONFIG = REPO_ROOT / CONFIG_FILE
ORACLE_PATH = REPO_ROOT / "tests" / "pandas_features.py"

Task = Callable[[dict[str, Any]], dict[str, Any]]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _maxrss_bytes() -> int:
    """Peak resident memory of this process image. Linux's `ru_maxrss` survives exec, so a
    worker forked from a large runner would inherit the runner's peak; VmHWM does not."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _machine_busy_s() -> float:
    """CPU seconds every process of the machine has used since boot (0.0 if unknown)."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    # cpu user nice system idle iowait irq softirq steal ...: busy is all but idle, iowait.
    ticks = [int(v) for v in first[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class Timer:
    """Context manager measuring wall time, CPU time and peak memory of its block."""

    def __enter__(self) -> Timer:
        self.base_rss = _maxrss_bytes()
        self.busy0 = _machine_busy_s()
        self.cpu0 = _cpu_s()
        self.wall0 = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.wall_s = time.perf_counter() - self.wall0
        self.cpu_s = _cpu_s() - self.cpu0
        self.peak_rss = _maxrss_bytes()
        self.other_cpu_s = max(0.0, _machine_busy_s() - self.busy0 - self.cpu_s)

    def result(self, **extra: Any) -> dict[str, Any]:
        """The measurement of the block, with task figures."""
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "peak_rss_bytes": self.peak_rss,
            "base_rss_bytes": self.base_rss,
            "other_cpu_s": self.other_cpu_s,
            **extra,
        }


def fingerprint(*files: str) -> dict[str, str]:
    """Short SHA-256 of each file (paths relative to the repository): the code measured."""
    return {f: hashlib.sha256((REPO_ROOT / f).read_bytes()).hexdigest()[:12] for f in files}


def _config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    return load_pipeline_config(PIPELINE_CONFIG, overrides)


def simulate(args: dict[str, Any]) -> dict[str, Any]:
    """Time `simulate_history`; write the result to `out` (untimed) when given."""
    from pipelines.generate import simulate_history
    from pipelines.io import write_parquet

    cfg = _config(args.get("overrides"))
    code = fingerprint(CONFIG_FILE, "pipelines/generate.py")
    with Timer() as timer:
        df = simulate_history(cfg.generate)
    if args.get("out"):
        write_parquet(df, Path(args["out"]))
    frauds = int(df["tx_fraud"].sum())
    rate = frauds / max(len(df), 1)
    return timer.result(rows=len(df), frauds=frauds, fraud_rate=rate, code=code)


def duckdb_features(args: dict[str, Any]) -> dict[str, Any]:
    """Time the DuckDB feature stage: parquet `clean` in, parquet `out` out."""
    from pipelines.features import build_features

    importlib.import_module("duckdb")  # the stage imports it lazily: keep that out of the timing
    cfg = _config()
    code = fingerprint(CONFIG_FILE, "pipelines/features.py")
    with Timer() as timer:
        rows = build_features(Path(args["clean"]), Path(args["out"]), cfg.features, cfg.engine)
    return timer.result(rows=rows, code=code)


def _jvm_usage() -> tuple[float, int]:
    """CPU seconds and peak resident bytes of this process's children (Spark's JVM), read
    while they run: neither RUSAGE_SELF nor VmHWM of this process sees them."""
    import psutil

    cpu, peak = 0.0, 0
    for child in psutil.Process().children(recursive=True):
        times = child.cpu_times()
        cpu += times.user + times.system
        status = Path(f"/proc/{child.pid}/status").read_text().splitlines()
        peak += next((int(s.split()[1]) * 1024 for s in status if s.startswith("VmHWM:")), 0)
    return cpu, peak


def spark_features(args: dict[str, Any]) -> dict[str, Any]:
    """Time the feature stage on Spark (`engine.kind: spark`, the config's master, local[2]):
    the session's start (a JVM), the stage, and the JVM's CPU and memory with this process's."""
    from pipelines import spark
    from pipelines.features import build_features

    importlib.import_module("pyspark.sql")  # imports out of the timing, as for DuckDB
    cfg = _config()
    engine = cfg.engine.model_copy(update={"kind": "spark"})
    code = fingerprint(
        CONFIG_FILE, "pipelines/features.py", "pipelines/spark_sql.py", "pipelines/spark.py"
    )
    with Timer() as timer:
        start = time.perf_counter()
        with spark.session(engine):
            started_s = time.perf_counter() - start
            rows = build_features(Path(args["clean"]), Path(args["out"]), cfg.features, engine)
            jvm_cpu_s, jvm_peak = _jvm_usage()  # before the JVM stops
    result = timer.result(rows=rows, code=code, session_start_s=started_s)
    result["cpu_s"] += jvm_cpu_s
    result["peak_rss_bytes"] += jvm_peak
    result["other_cpu_s"] = max(0.0, result["other_cpu_s"] - jvm_cpu_s)
    return result


def _load_oracle() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pandas_features_oracle", ORACLE_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the pandas oracle from {ORACLE_PATH}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pandas_features(args: dict[str, Any]) -> dict[str, Any]:
    """Time the pandas oracle the same way: read parquet, compute, write parquet (zstd)."""
    import pandas as pd

    oracle = _load_oracle()
    cfg = _config().features
    code = fingerprint(CONFIG_FILE, str(ORACLE_PATH.relative_to(REPO_ROOT)))
    with Timer() as timer:
        tx = pd.read_parquet(args["clean"])
        out = oracle.build_features(
            tx,
            cfg.label_delay_days,
            list(cfg.customer_windows_days),
            list(cfg.terminal_windows_days),
            cfg.night_max_hour,
        )
        out.to_parquet(args["out"], compression="zstd", index=False)
    return timer.result(rows=len(out), code=code)


def monitoring_windows(args: dict[str, Any]) -> dict[str, Any]:
    """Prepare (not a measurement): a reference window (a parquet sample of
    `reference_rows`, as the `reference` stage writes it) and the last `rows` transactions
    as the scoring service captures them (its JSON-lines prediction log, with amounts
    inflated 1.5x, plus a label log). `score`
    stands in for the captured fraud probability (monitoring reads scores, it does not
    compute them)."""
    import duckdb

    from pipelines.features import build_features
    from pipelines.io import sql_path
    from pipelines.schema import feature_columns

    cfg = _config()
    model = load_project_config(REPO_ROOT / "configs/project.yaml").registered_model_name
    out = Path(args["dir"])
    build_features(Path(args["clean"]), out / "features.parquet", cfg.features, cfg.engine)
    names = feature_columns(cfg.features)
    inflate = {n for n in names if "amount" in n and "ratio" not in n}
    score = "tx_amount / (tx_amount + {} + 1.0)"
    con = duckdb.connect()
    features = sql_path(out / "features.parquet")
    con.execute(f"""CREATE TABLE f AS SELECT *, row_number() OVER (ORDER BY tx_datetime,
                    transaction_id) AS i FROM read_parquet('{features}')""")
    total = int(con.execute("SELECT count(*) FROM f").fetchone()[0])  # type: ignore[index]
    cut = total - int(args["rows"])
    con.execute(f"""COPY (SELECT transaction_id, tx_datetime, {", ".join(names)}, tx_fraud,
                    {score.format(names[10])} AS score FROM (SELECT * FROM f WHERE i <= {cut})
                    USING SAMPLE reservoir({int(args["reference_rows"])} ROWS) REPEATABLE (0))
                    TO '{sql_path(out / "reference.parquet")}' (FORMAT PARQUET)""")
    feats = ", ".join(f"'{n}': [{n} * {1.5 if n in inflate else 1.0}]" for n in names)
    capture = out / "capture"
    (capture / "date=2026-01-01").mkdir(parents=True, exist_ok=True)
    (capture / "labels" / "date=2026-01-01").mkdir(parents=True, exist_ok=True)
    # One line per transaction, as /v1/score logs them (the reader's worst case: a batch
    # request logs its rows as one line).
    con.execute(f"""COPY (SELECT '2026-01-01T00:00:00+00:00' AS captured_at,
                    '{model}' AS model_name, 1 AS model_version,
                    [transaction_id] AS transaction_id,
                    [strftime(tx_datetime, '%Y-%m-%dT%H:%M:%S')] AS tx_datetime,
                    [customer_id] AS customer_id, [terminal_id] AS terminal_id,
                    [tx_amount * 1.5] AS tx_amount, {{{feats}}} AS features,
                    [{score.format(names[10])}] AS fraud_probability, [false] AS is_fraud
                    FROM f WHERE i > {cut})
                    TO '{sql_path(capture / "date=2026-01-01" / "part-1.jsonl")}' (FORMAT JSON)""")
    con.execute(f"""COPY (SELECT '2026-01-02T00:00:00+00:00' AS received_at, transaction_id,
                    tx_fraud FROM f WHERE i > {cut})
                    TO '{sql_path(capture / "labels" / "date=2026-01-01" / "part-1.jsonl")}'
                    (FORMAT JSON)""")
    window = con.execute(f"SELECT min(tx_datetime), max(tx_datetime) FROM f WHERE i > {cut}")
    first, last = window.fetchone()  # type: ignore[misc]
    (out / "window.json").write_text(
        json.dumps({"start": str(first), "end": str(last + dt.timedelta(seconds=1))})
    )
    with Timer() as timer:
        pass
    return timer.result(rows=int(args["rows"]))


def monitoring_drift(args: dict[str, Any]) -> dict[str, Any]:
    """Time one monitoring run: read the captured window (labels joined, sampled in DuckDB)
    and the reference, Evidently drift and quality reports, HTML + JSON."""
    import pandas as pd

    from monitoring.reports import drift, quality
    from monitoring.windows import read_window
    from pipelines.config import load_monitoring_config
    from pipelines.schema import feature_columns

    names = feature_columns(_config().features)
    mon = load_monitoring_config(REPO_ROOT / "configs/monitoring.yaml")
    out = Path(args["dir"])
    bounds = json.loads((out / "window.json").read_text())
    start, end = (dt.datetime.fromisoformat(bounds[k]) for k in ("start", "end"))
    code = fingerprint(
        "monitoring/reports.py",
        "monitoring/windows.py",
        "monitoring/labels.py",
        "configs/monitoring.yaml",
    )
    with Timer() as timer:
        reference = pd.read_parquet(out / "reference.parquet")
        window = read_window(out / "capture", names, start, end, mon.sample_rows, mon.seed)
        summary = drift(
            reference, window.sample, names, "score", mon.sample_rows, mon.seed, out / "report"
        )
        found = quality(
            reference,
            window.labelled,
            "tx_fraud",
            "score",
            0.5,
            out / "report",
            mon.sample_rows,
            mon.seed,
        )
    return timer.result(
        rows=window.rows,
        labelled=found.labelled_rows,
        drift_share=summary.drift_share,
        prediction_drift=summary.prediction_drift,
        code=code,
    )


TASKS: dict[str, Task] = {
    "simulate": simulate,
    "duckdb_features": duckdb_features,
    "pandas_features": pandas_features,
    "spark_features": spark_features,
    "monitoring_windows": monitoring_windows,
    "monitoring_drift": monitoring_drift,
}


def main(argv: list[str] | None = None) -> int:
    """Run the task named by the first argument with the JSON arguments of the second."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in TASKS:
        print(f"usage: python -m benchmarks.worker {{{','.join(TASKS)}}} JSON", file=sys.stderr)
        return 2
    result = TASKS[argv[0]](json.loads(argv[1]))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
