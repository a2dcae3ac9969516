"""The features section's tables, notes and targets, from made-up figures (nothing runs)."""

from __future__ import annotations

from benchmarks.context import DEFAULT, TEN_X
from benchmarks.features import Results, Run, ratios_table, runs_table, targets
from benchmarks.features import _notes as notes
from benchmarks.measure import Measurement, Summary


def _run(label: str, scale: str, wall_s: float, **extra: float) -> Run:
    m = Measurement(wall_s, wall_s * 1.5, 800_000_000, 40_000_000, extra={"rows": 1_000, **extra})
    return Run(label, DEFAULT if scale == "1x" else TEN_X, Summary((m,)))


def _results() -> Results:
    return Results(
        duckdb=_run("DuckDB stage", "1x", 3.0),
        oracle=_run("pandas oracle", "1x", 90.0),
        spark=_run("Spark stage, local[2]", "1x", 60.0, session_start_s=12.0),
        large=_run("DuckDB stage", "10x", 30.0),
        spark_large=_run("Spark stage, local[2]", "10x", 420.0, session_start_s=13.0),
    )


def test_spark_is_a_run_and_a_ratio_at_both_sizes_without_a_target() -> None:
    r = _results()
    runs = runs_table(r)
    assert "Spark stage, local[2], 1x" in runs
    assert "Spark stage, local[2], 10x" in runs
    ratios = ratios_table(r)
    assert "| Spark / DuckDB, 1x | 20.0x |" in ratios
    assert "| Spark / DuckDB, 10x | 14.0x |" in ratios
    assert "| Spark 10x / 1x | 7.0x |" in ratios
    assert not any("Spark" in t.name for t in targets(r))
    assert any("12.0 s, 13.0 s" in note for note in notes(r))


def test_quick_mode_has_spark_at_the_base_size_only() -> None:
    r = _results()
    quick = Results(r.duckdb, r.oracle, r.spark)
    assert [run.scale.label for run in quick.runs] == ["1x", "1x", "1x"]
    assert "Spark / DuckDB, 10x" not in ratios_table(quick)
