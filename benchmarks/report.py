"""The report: machine description, Markdown tables, targets, and sections kept by name.

Each section sits between `<!-- section:NAME -->` and `<!-- /section:NAME -->`, so a run of
some sections (`--only`) replaces those and keeps the others already in the file.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks.measure import Summary

PACKAGES = ("duckdb", "pandas", "numpy", "pyarrow")
SECTION_RE = re.compile(
    r"<!-- section:(?P<name>[\w-]+) -->\n.*?<!-- /section:(?P=name) -->\n", re.DOTALL
)

METHOD = (
    "Each measurement runs in a fresh Python subprocess (`python -m benchmarks.worker`), so "
    "none inherits memory, caches or threads from another. In it, imports and config loading "
    "come first and only the work is timed. Wall time is `time.perf_counter` across the timed "
    "section; CPU time is user + sys of the measuring process (`getrusage(RUSAGE_SELF)`, all "
    "its threads) across it; peak memory is `ru_maxrss` of the measuring process at the end "
    "of the timed section, so it includes the interpreter and the imported libraries (shown "
    "apart as *RSS after imports*). Repeated measurements report the median of N of each "
    "figure (N in each table) and the range of wall times. DuckDB runs with its defaults "
    "(one thread per usable core). *Other CPU s* is the CPU time the rest of the machine "
    "used during the timed section (system-wide busy time from `/proc/stat` minus the "
    "measuring process; the most of any run): well above zero, the machine was not idle and "
    "the timings are inflated. MB and GB are decimal (10^6 and 10^9 bytes). Model quality is "
    "set beside the handbook's published figures only when measured under the handbook's "
    "protocol (its features, test folds and card precision@100: benchmarks/handbook.py); "
    "quality under the project's own configuration is reported apart, as not comparable."
)


@dataclass(frozen=True)
class Target:
    """A goal a benchmark figure should meet."""

    name: str
    goal: str
    value: str
    passed: bool
    suspect: bool = False  # measured while other processes used the CPU

    @property
    def verdict(self) -> str:
        """PASS or FAIL, flagged when the machine was not idle."""
        return ("PASS" if self.passed else "FAIL") + (" (machine not idle)" if self.suspect else "")


def now_utc() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds(value: float) -> str:
    """Seconds with two decimals."""
    return f"{value:.2f}"


def wall_cell(s: Summary) -> str:
    """Median wall seconds and, for several runs, their range."""
    if s.n == 1:
        return seconds(s.wall_s)
    low, high = s.wall_range
    return f"{seconds(s.wall_s)} ({seconds(low)} to {seconds(high)})"


def contention_notes(runs: Sequence[tuple[str, Summary]]) -> list[str]:
    """A warning naming the runs during which other processes used the CPU, if any."""
    busy = [f"{label} ({s.other_cpu_s:.1f} CPU s)" for label, s in runs if s.contended]
    if not busy:
        return []
    return [
        "**Warning: the machine was not idle** during "
        + ", ".join(busy)
        + ": other processes used the CPU meanwhile, so those times are inflated. "
        "Rerun on an idle machine."
    ]


def code_notes(runs: Sequence[Summary]) -> list[str]:
    """The source files measured with their hashes; a warning if one changed between runs."""
    seen: dict[str, set[str]] = {}
    for summary in runs:
        for m in summary.runs:
            for path, digest in m.extra.get("code", {}).items():
                seen.setdefault(path, set()).add(digest)
    changed = sorted(p for p, digests in seen.items() if len(digests) > 1)
    listed = ", ".join(f"`{p}` {' / '.join(sorted(d))}" for p, d in sorted(seen.items()))
    notes = [f"Code measured (SHA-256, first 12 hex digits): {listed}."] if seen else []
    if changed:
        notes.append(
            "**Warning: the code changed during the benchmark** ("
            + ", ".join(f"`{p}`" for p in changed)
            + "): the runs measured different versions. Rerun."
        )
    return notes


def megabytes(value: float) -> str:
    """Bytes as whole decimal megabytes."""
    return f"{value / 1e6:,.0f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(targets: Sequence[Target]) -> str:
    """The targets of a section with their verdicts."""
    rows = [(t.name, t.goal, t.value, f"**{t.verdict}**") for t in targets]
    return table(("Target", "Goal", "Measured", "Result"), rows)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in _read(Path("/proc/cpuinfo")).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_total() -> str:
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) * 1024 / 1e9:.1f} GB"
    return "unknown"


def _versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def environment() -> list[tuple[str, str]]:
    """The machine and software the figures were measured on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cpus = f"{os.cpu_count()} logical CPUs" + (f", {usable} usable" if usable else "")
    return [
        ("Platform", platform.platform()),
        ("CPU", f"{_cpu_model()} ({cpus})"),
        ("Memory", _memory_total()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("Packages", _versions()),
    ]


def block(name: str, title: str, body: str) -> str:
    """A section of the report, delimited so later runs can replace it alone."""
    return f"<!-- section:{name} -->\n## {title}\n\n{body.strip()}\n<!-- /section:{name} -->\n"


def existing_blocks(text: str) -> dict[str, str]:
    """The sections of a previous report, by name, in file order."""
    return {m.group("name"): m.group(0) for m in SECTION_RE.finditer(text)}


def merge(old: dict[str, str], new: dict[str, str], order: Sequence[str]) -> list[str]:
    """New sections replace old ones; registry order first, then sections unknown here."""
    merged = {**old, **new}
    names = [n for n in order if n in merged] + [n for n in merged if n not in order]
    return [merged[n] for n in names]


def document(blocks: Sequence[str], command: str, note: str = "") -> str:
    """The whole report: title, how it was made, the machine, the method, the sections."""
    env = table(("Item", "Value"), [(f"**{k}**", v) for k, v in environment()])
    head = [
        "# Benchmarks",
        "Generated by `python -m benchmarks`; do not edit by hand, rerun it. Each section "
        "states when it was measured; the machine below is that of the last run.",
        f"- Command: `{command}`\n- Last run: {now_utc()}" + (f"\n- {note}" if note else ""),
        "## Machine\n\n" + env,
        "## Method\n\n" + METHOD,
    ]
    return "\n\n".join(head) + "\n\n" + "\n".join(blocks)


@dataclass(frozen=True)
class SectionResult:
    """A section's Markdown body and the targets it checked."""

    body: str
    targets: list[Target]
