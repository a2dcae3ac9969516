"""The registry of report sections: a name, a title, and the function that measures it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import features, first_run, models, monitoring, serving, simulator, training
from benchmarks.context import Context
from benchmarks.report import SectionResult


@dataclass(frozen=True)
class Section:
    """A benchmark of the report; later benchmarks (serving, monitoring) add one here."""

    name: str
    title: str
    run: Callable[[Context], SectionResult]


SECTIONS: tuple[Section, ...] = (
    Section("simulator", "Simulator", simulator.run),
    Section("features", "Feature stage: DuckDB vs the pandas oracle and Spark", features.run),
    Section("training", "Training: make run and model quality", training.run),
    Section("models", "Model comparison over 3 seeds, and the cost of reasons", models.run),
    Section(
        "first-run", "First run: fresh clone to champion, install and run apart", first_run.run
    ),
    Section("serving", "Scoring service vs mlflow models serve", serving.run),
    Section("monitoring", "Monitoring: one run over 1 M captured rows", monitoring.run),
)
