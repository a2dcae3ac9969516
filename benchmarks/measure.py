"""One measurement in a fresh subprocess, and the medians of repeated measurements."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_TIMEOUT_S = 3600
# Other processes using more than this share of one core during a run make its timings suspect.
CONTENTION_SHARE = 0.05


class BenchmarkError(RuntimeError):
    """A worker failed or did not report a measurement."""


@dataclass(frozen=True)
class Measurement:
    """What one worker reports about its timed section."""

    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    base_rss_bytes: int
    other_cpu_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        """Build from the worker's JSON object; keys other than the four figures are extra."""
        keys = ("wall_s", "cpu_s", "peak_rss_bytes", "base_rss_bytes", "other_cpu_s")
        extra = {k: v for k, v in data.items() if k not in keys}
        return cls(
            wall_s=float(data["wall_s"]),
            cpu_s=float(data["cpu_s"]),
            peak_rss_bytes=int(data["peak_rss_bytes"]),
            base_rss_bytes=int(data["base_rss_bytes"]),
            other_cpu_s=float(data.get("other_cpu_s", 0.0)),
            extra=extra,
        )


@dataclass(frozen=True)
class Summary:
    """Repeated measurements of one task; each figure is the median over the runs."""

    runs: tuple[Measurement, ...]

    @property
    def n(self) -> int:
        """Number of runs."""
        return len(self.runs)

    @property
    def wall_s(self) -> float:
        """Median wall seconds."""
        return statistics.median(m.wall_s for m in self.runs)

    @property
    def wall_range(self) -> tuple[float, float]:
        """Fastest and slowest wall seconds."""
        walls = [m.wall_s for m in self.runs]
        return min(walls), max(walls)

    @property
    def cpu_s(self) -> float:
        """Median CPU seconds (user + sys)."""
        return statistics.median(m.cpu_s for m in self.runs)

    @property
    def peak_rss_bytes(self) -> float:
        """Median peak resident set size."""
        return statistics.median(m.peak_rss_bytes for m in self.runs)

    @property
    def base_rss_bytes(self) -> float:
        """Median resident set size after imports, before the timed section."""
        return statistics.median(m.base_rss_bytes for m in self.runs)

    @property
    def other_cpu_s(self) -> float:
        """The most CPU seconds other processes used during any one run (0 on an idle box)."""
        return max(m.other_cpu_s for m in self.runs)

    @property
    def contended(self) -> bool:
        """Whether other processes used more than CONTENTION_SHARE of a core in some run."""
        return any(m.other_cpu_s > CONTENTION_SHARE * m.wall_s for m in self.runs)

    def extra(self, key: str) -> Any:
        """An extra figure of the first run (rows, fraud rate: the same in every run)."""
        return self.runs[0].extra[key]


def run_task(task: str, **args: Any) -> Measurement:
    """Run `task` of `benchmarks.worker` in a fresh interpreter; return its measurement."""
    cmd = [sys.executable, "-m", "benchmarks.worker", task, json.dumps(args)]
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        timeout=WORKER_TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise BenchmarkError(f"worker {task!r} exited with status {proc.returncode}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise BenchmarkError(f"worker {task!r} reported nothing")
    return Measurement.from_json(json.loads(lines[-1]))


def repeat(label: str, n: int, task: str, **args: Any) -> Summary:
    """Run `task` `n` times, each in a fresh subprocess, printing progress to stderr."""
    runs = []
    for i in range(1, n + 1):
        m = run_task(task, **args)
        print(f"  {label} run {i}/{n}: {describe(m)}", file=sys.stderr)
        runs.append(m)
    return Summary(tuple(runs))


def describe(m: Measurement) -> str:
    """One line of progress for a measurement, flagging a busy machine."""
    text = (
        f"{m.wall_s:.2f} s wall, {m.cpu_s:.2f} s CPU, {m.peak_rss_bytes / 1e6:,.0f} MB peak, "
        f"{m.other_cpu_s:.2f} s CPU used by other processes"
    )
    if m.other_cpu_s > CONTENTION_SHARE * m.wall_s:
        text += "  WARNING: the machine was not idle"
    return text
