"""Section `simulator`: how long `simulate_history` takes at the default size (and at 10x)."""

from __future__ import annotations

from benchmarks.context import Context
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

REPEATS = 3
TARGET_WALL_S = 60.0
HEADERS = (
    "Size",
    "Rows",
    "Fraud rate",
    "N",
    "Wall s, median (range)",
    "CPU s",
    "Peak RSS MB",
    "RSS after imports MB",
    "Other CPU s",
)
INTRO = (
    "`pipelines.generate.simulate_history` on `configs/pipeline.yaml` (10x: the overrides "
    "in `benchmarks/context.py`, ten times the customers, terminals and compromises a day). "
    "Writing the parquet is not timed. The 10x figure is the single simulation that makes "
    "the 10x data for the feature stage."
)


def _row(label: str, s: Summary) -> tuple[str, ...]:
    return (
        label,
        f"{s.extra('rows'):,}",
        f"{s.extra('fraud_rate'):.3%}",
        str(s.n),
        wall_cell(s),
        seconds(s.cpu_s),
        megabytes(s.peak_rss_bytes),
        megabytes(s.base_rss_bytes),
        seconds(s.other_cpu_s),
    )


def run(ctx: Context) -> SectionResult:
    """Time the simulator REPEATS times at the base size; add the 10x simulation if made."""
    base = repeat(f"simulator {ctx.base.label}", REPEATS, "simulate", overrides=ctx.base.overrides)
    runs = [(ctx.base.label, base)]
    if ctx.large is not None:
        runs.append((ctx.large.label, Summary((ctx.dataset(ctx.large).simulation,))))
    target = Target(
        f"Simulator wall time, {ctx.base.label}",
        f"< {TARGET_WALL_S:.0f} s",
        f"{seconds(base.wall_s)} s",
        base.wall_s < TARGET_WALL_S,
        base.contended,
    )
    parts = [
        f"Measured {now_utc()}. {INTRO}",
        table(HEADERS, [_row(label, s) for label, s in runs]),
        *contention_notes([(f"simulator {label}", s) for label, s in runs]),
        *code_notes([s for _, s in runs]),
        "### Targets",
    ]
    return SectionResult("\n\n".join([*parts, targets_table([target])]), [target])
