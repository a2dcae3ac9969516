"""Section `features`: the DuckDB feature stage against the pandas oracle, and at 10x; the
same stage on Spark (`engine.kind: spark`, local mode) at 1x and 10x, as figures.

Every implementation reads the same parquet and writes a parquet of the features, so the
comparison covers the whole stage, not only the arithmetic. Spark's figures include starting
its JVM and count the JVM's CPU and memory with the Python process's; they carry no target:
Spark local on 2 cores is not what it is for (docs/scale.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.context import Context, Scale
from benchmarks.measure import Summary, repeat
from benchmarks.report import (
    SectionResult,
    Target,
    code_notes,
    contention_notes,
    megabytes,
    now_utc,
    seconds,
    table,
    targets_table,
    wall_cell,
)

DUCKDB_REPEATS = 3
LARGE_REPEATS = 2
ORACLE_REPEATS = 1
SPARK_REPEATS = 1  # figures only, and a JVM start each
GB = 1e9
BASE_MEMORY_LIMIT = 1 * GB
LARGE_MEMORY_LIMIT = 4 * GB
MAX_GROWTH = 12.0
MIN_SPEEDUP = 20.0
# Implementation -> (worker task, label in the report).
TASKS = {
    "duckdb": ("duckdb_features", "DuckDB stage"),
    "pandas": ("pandas_features", "pandas oracle"),
    "spark": ("spark_features", "Spark stage, local[2]"),
}
RUN_HEADERS = (
    "Run",
    "Rows",
    "N",
    "Wall s, median (range)",
    "CPU s",
    "CPU / wall",
    "Peak RSS MB",
    "RSS after imports MB",
    "Other CPU s",
)


@dataclass(frozen=True)
class Run:
    """Repeated measurements of one implementation at one size."""

    label: str
    scale: Scale
    summary: Summary


@dataclass(frozen=True)
class Results:
    """The measurements of the section (the `large` ones are None in quick mode)."""

    duckdb: Run
    oracle: Run
    spark: Run
    large: Run | None = None
    spark_large: Run | None = None

    @property
    def runs(self) -> list[Run]:
        """Every run, in report order."""
        found = [self.duckdb, self.oracle, self.spark, self.large, self.spark_large]
        return [run for run in found if run is not None]


def _run(ctx: Context, impl: str, scale: Scale, n: int) -> Run:
    data = ctx.dataset(scale)
    out = ctx.scratch(f"features-{impl}-{scale.label}.parquet")
    task, label = TASKS[impl]
    summary = repeat(f"{label} {scale.label}", n, task, clean=str(data.path), out=str(out))
    return Run(label, scale, summary)


def measure(ctx: Context) -> Results:
    """Run every measurement of the section."""
    duckdb = _run(ctx, "duckdb", ctx.base, DUCKDB_REPEATS)
    oracle = _run(ctx, "pandas", ctx.base, ORACLE_REPEATS)
    spark = _run(ctx, "spark", ctx.base, SPARK_REPEATS)
    if ctx.large is None:
        return Results(duckdb, oracle, spark)
    large = _run(ctx, "duckdb", ctx.large, LARGE_REPEATS)
    spark_large = _run(ctx, "spark", ctx.large, SPARK_REPEATS)
    return Results(duckdb, oracle, spark, large, spark_large)


def _row(run: Run) -> tuple[str, ...]:
    s = run.summary
    return (
        f"{run.label}, {run.scale.label}",
        f"{s.extra('rows'):,}",
        str(s.n),
        wall_cell(s),
        seconds(s.cpu_s),
        f"{s.cpu_s / s.wall_s:.2f}",
        megabytes(s.peak_rss_bytes),
        megabytes(s.base_rss_bytes),
        seconds(s.other_cpu_s),
    )


def runs_table(r: Results) -> str:
    """One row per implementation and size."""
    return table(RUN_HEADERS, [_row(run) for run in r.runs])


def _ratio_row(label: str, top: Summary, bottom: Summary) -> tuple[str, str, str]:
    return label, f"{top.wall_s / bottom.wall_s:.1f}x", f"{top.cpu_s / bottom.cpu_s:.1f}x"


def ratios_table(r: Results) -> str:
    """Speed-up of DuckDB over the oracle and over Spark, and growth of each with size."""
    base = r.duckdb.scale.label
    rows = [
        _ratio_row(f"pandas oracle / DuckDB, {base}", r.oracle.summary, r.duckdb.summary),
        _ratio_row(f"Spark / DuckDB, {base}", r.spark.summary, r.duckdb.summary),
    ]
    if r.large:
        label = f"DuckDB {r.large.scale.label} / {base}"
        rows.append(_ratio_row(label, r.large.summary, r.duckdb.summary))
    if r.large and r.spark_large:
        large = r.large.scale.label
        rows.append(_ratio_row(f"Spark / DuckDB, {large}", r.spark_large.summary, r.large.summary))
        rows.append(_ratio_row(f"Spark {large} / {base}", r.spark_large.summary, r.spark.summary))
    return table(("Ratio", "Wall time", "CPU time"), rows)


def _memory_target(run: Run, limit: float) -> Target:
    peak = run.summary.peak_rss_bytes
    name = f"DuckDB stage peak RSS, {run.scale.label}"
    return Target(name, f"< {limit / GB:.0f} GB", f"{megabytes(peak)} MB", peak < limit)


def _speedup_target(kind: str, r: Results) -> Target:
    oracle, duckdb = r.oracle.summary, r.duckdb.summary
    ratio = oracle.cpu_s / duckdb.cpu_s if kind == "CPU" else oracle.wall_s / duckdb.wall_s
    name = f"pandas oracle / DuckDB, {kind} time"
    suspect = oracle.contended or duckdb.contended
    return Target(name, f">= {MIN_SPEEDUP:.0f}x", f"{ratio:.1f}x", ratio >= MIN_SPEEDUP, suspect)


def _growth_target(base: Run, large: Run) -> Target:
    growth = large.summary.wall_s / base.summary.wall_s
    name = f"DuckDB wall time growth, {large.scale.label} / {base.scale.label}"
    suspect = base.summary.contended or large.summary.contended
    return Target(name, f"<= {MAX_GROWTH:.0f}x", f"{growth:.1f}x", growth <= MAX_GROWTH, suspect)


def targets(r: Results) -> list[Target]:
    """The section's goals: memory at both sizes, growth with size, speed-up over pandas."""
    found = [
        _memory_target(r.duckdb, BASE_MEMORY_LIMIT),
        _speedup_target("wall", r),
        _speedup_target("CPU", r),
    ]
    if r.large:
        found += [_growth_target(r.duckdb, r.large), _memory_target(r.large, LARGE_MEMORY_LIMIT)]
    return found


def _notes(r: Results) -> list[str]:
    duckdb_rows, oracle_rows = r.duckdb.summary.extra("rows"), r.oracle.summary.extra("rows")
    notes = contention_notes([(f"{run.label} {run.scale.label}", run.summary) for run in r.runs])
    notes += code_notes([run.summary for run in r.runs])
    if duckdb_rows != oracle_rows:
        notes.append(f"**Row counts differ**: DuckDB {duckdb_rows:,}, pandas {oracle_rows:,}.")
    spark_rows = r.spark.summary.extra("rows")
    if spark_rows != duckdb_rows:
        notes.append(f"**Row counts differ**: DuckDB {duckdb_rows:,}, Spark {spark_rows:,}.")
    starts = [f"{s.extra('session_start_s'):.1f} s" for s in _spark_summaries(r)]
    notes.append(
        f"Spark's wall time includes starting its session (a JVM: {', '.join(starts)}); its "
        "CPU time and peak RSS add the JVM's to the Python process's. No target: Spark "
        "local on 2 cores is the parity check's engine, not the scale path (docs/scale.md)."
    )
    return notes


def _spark_summaries(r: Results) -> list[Summary]:
    return [run.summary for run in (r.spark, r.spark_large) if run is not None]


def run(ctx: Context) -> SectionResult:
    """Measure, then render the tables and targets."""
    r = measure(ctx)
    found = targets(r)
    intro = (
        f"Measured {now_utc()}. DuckDB: `pipelines.features.build_features` (reads the "
        "parquet, writes the features parquet). Oracle: `tests/pandas_features.py` "
        "(`pd.read_parquet`, `build_features`, `to_parquet`, zstd). Spark: the same "
        "`build_features` with `engine.kind: spark` (`engine.spark_master` local[2], the "
        "committed `engine.spark_conf`). Same input file for all."
    )
    parts = [
        intro,
        table_with_title("Runs", runs_table(r)),
        table_with_title("Ratios", ratios_table(r)),
        *_notes(r),
        table_with_title("Targets", targets_table(found)),
    ]
    return SectionResult("\n\n".join(parts), found)


def table_with_title(title: str, md: str) -> str:
    """A level-3 heading above a table."""
    return f"### {title}\n\n{md}"
