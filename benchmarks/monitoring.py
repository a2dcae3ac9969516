"""Section `monitoring`: one monitoring run over a 1,000,000-row captured window, drift injected."""

from __future__ import annotations

from benchmarks.context import Context
from benchmarks.measure import REPO_ROOT, Summary, repeat, run_task
from benchmarks.report import (
    SectionResult,
    Target,
    megabytes,
    now_utc,
    seconds,
    table,
    targets_table,
    wall_cell,
)
from pipelines.config import load_monitoring_config

ROWS = 1_000_000
REPEATS = 3
WARN_SHARE = 0.15  # configs/monitoring.yaml decisions.warn_drift_share


def run(ctx: Context) -> SectionResult:
    """Prepare the windows once, then time the report REPEATS times in fresh processes."""
    rows = ROWS if not ctx.quick else 100_000
    workdir = ctx.scratch("monitoring")
    workdir.mkdir(exist_ok=True)
    run_task(
        "monitoring_windows",
        clean=str(ctx.dataset(ctx.base).path),
        dir=str(workdir),
        rows=rows,
        reference_rows=load_monitoring_config(REPO_ROOT / "configs/monitoring.yaml").sample_rows,
    )
    s: Summary = repeat(
        "monitoring report", REPEATS, "monitoring_drift", dir=str(workdir), rows=rows
    )
    detected = s.extra("drift_share") >= WARN_SHARE
    targets = [
        Target(
            f"monitoring run over {rows:,} rows, wall",
            "< 15 s",
            f"{seconds(s.wall_s)} s",
            s.wall_s < 15,
            s.contended,
        ),
        Target(
            "monitoring run, peak RSS",
            "< 1 GB",
            f"{megabytes(s.peak_rss_bytes)} MB",
            s.peak_rss_bytes < 1e9,
        ),
        Target(
            "injected drift still detected",
            f">= {WARN_SHARE:.0%} of features drifted",
            f"{s.extra('drift_share'):.0%}",
            detected,
        ),
    ]
    body = [
        f"Measured {now_utc()}. One monitoring window as the monitoring flow runs it, without "
        "the MLflow logging: a reference window (a seeded sample of `sample_rows` rows of "
        "the first rows of the 1x features, parquet, as the `reference` stage writes it) "
        f"against the last {rows:,} transactions as the "
        "scoring service captures them (a JSON-lines prediction log with the amounts "
        "inflated by 1.5, `amount_inflation`, and a label log for every row). Timed: reading "
        "the window with its labels (`monitoring.windows.read_window`: one pass over the log "
        "with an explicit schema, a seeded reservoir sample of `sample_rows` inside DuckDB), "
        "Evidently's drift preset, the quality metrics on every labelled row, and the HTML "
        "and JSON reports. The score column is a stand-in computed from the features "
        "(monitoring reads captured scores; it does not compute them).",
        table(
            ("Run", "N", "Wall s, median (range)", "CPU s", "Peak RSS MB", "Drift share"),
            [
                (
                    "report",
                    str(s.n),
                    wall_cell(s),
                    seconds(s.cpu_s),
                    megabytes(s.peak_rss_bytes),
                    f"{s.extra('drift_share'):.0%}",
                )
            ],
        ),
        "### Targets",
        targets_table(targets),
    ]
    return SectionResult("\n\n".join(body), targets)
