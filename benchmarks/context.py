"""What the sections of one run share: the mode, a scratch directory and the datasets."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.measure import REPO_ROOT, Measurement, describe, run_task


@dataclass(frozen=True)
class Scale:
    """A data size: a label for the report and the config overrides that produce it."""

    label: str
    overrides: dict[str, Any]


DEFAULT = Scale("1x", {})
# The handbook's advice at 10x: ten times the customers and terminals, and ten times the
# compromised terminals and customers a day, so the fraud rate stays comparable.
TEN_X = Scale(
    "10x",
    {
        "generate.n_customers": 50_000,
        "generate.n_terminals": 100_000,
        "generate.n_days": 183,
        "generate.fraud.compromised_terminals_per_day": 20,
        "generate.fraud.compromised_customers_per_day": 30,
    },
)
# Smoke test of the harness: a tenth of the default world (same fraud settings).
TENTH = Scale("0.1x", {"generate.n_customers": 500, "generate.n_terminals": 1_000})


@dataclass(frozen=True)
class Dataset:
    """A simulated history written to parquet, and the measurement of its simulation."""

    scale: Scale
    path: Path
    simulation: Measurement


@dataclass
class Context:
    """One run of the benchmarks: quick or full, where scratch files go, datasets made."""

    workdir: Path
    quick: bool
    _datasets: dict[str, Dataset] = field(default_factory=dict)

    @property
    def base(self) -> Scale:
        """The reference size: the default config, or a tenth of it in quick mode."""
        return TENTH if self.quick else DEFAULT

    @property
    def large(self) -> Scale | None:
        """The scaling size (10x), or None in quick mode."""
        return None if self.quick else TEN_X

    def scratch(self, name: str) -> Path:
        """A path for a temporary file of this run."""
        return self.workdir / name

    def dataset(self, scale: Scale) -> Dataset:
        """The history at `scale`, simulated (in a fresh subprocess) on first use."""
        if scale.label not in self._datasets:
            path = self.scratch(f"transactions-{scale.label}.parquet")
            print(f"  simulating {scale.label} data -> {path}", file=sys.stderr)
            m = run_task("simulate", overrides=scale.overrides, out=str(path))
            print(f"  {scale.label}: {m.extra['rows']:,} rows; {describe(m)}", file=sys.stderr)
            self._datasets[scale.label] = Dataset(scale, path, m)
        return self._datasets[scale.label]


def project_copy(ctx: Context) -> Path:
    """A fresh copy of the committed project (`git archive HEAD`) in the scratch folder."""
    root = ctx.scratch("project")
    if not root.exists():
        root.mkdir()
        archive = subprocess.run(
            ["git", "archive", "HEAD"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        for args in (
            ["init", "-q"],
            ["add", "-A"],
            [
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@example.com",
                "commit",
                "-qm",
                "bench",
            ],
        ):
            subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root
