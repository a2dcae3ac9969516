"""Drift reports: the only module that imports Evidently (0.7's `Report`, `Dataset`,
`DataDefinition`, presets from `evidently.presets`).

Both windows are compared on seeded random samples of at most `sample_rows` rows (the
sampling scheme of configs/monitoring.yaml), so a report over a million captured
predictions costs about what one over fifty thousand does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift statistic, the method behind it, and the verdict."""

    column: str
    method: str
    value: float
    threshold: float

    @property
    def drifted(self) -> bool:
        # p-value methods: small means different; distance methods: large means different.
        if "p_value" in self.method:
            return self.value < self.threshold
        return self.value >= self.threshold


@dataclass(frozen=True)
class DriftSummary:
    """What a comparison found, per column and overall."""

    columns: list[ColumnDrift]
    score_column: str
    reference_rows: int
    current_rows: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.column != self.score_column]

    @property
    def drift_share(self) -> float:
        feats = self.features
        return sum(c.drifted for c in feats) / len(feats) if feats else 0.0

    @property
    def prediction_drift(self) -> bool:
        return any(c.drifted for c in self.columns if c.column == self.score_column)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drift_share": self.drift_share,
            "prediction_drift": self.prediction_drift,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "drifted": [c.column for c in self.columns if c.drifted],
            "columns": {
                c.column: {
                    "method": c.method,
                    "value": c.value,
                    "threshold": c.threshold,
                    "drifted": c.drifted,
                }
                for c in self.columns
            },
            **self.extra,
        }


def sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """A seeded random sample of at most `rows` rows (the whole frame when smaller)."""
    return frame if len(frame) <= rows else frame.sample(rows, random_state=seed)


def drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    score: str,
    sample_rows: int,
    seed: int,
    out: Path | None = None,
) -> DriftSummary:
    """Per-feature data drift and prediction (score) drift of `current` against `reference`."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [*features, score]
    ref = sample(reference[columns], sample_rows, seed)
    cur = sample(current[columns], sample_rows, seed)
    definition = DataDefinition(numerical_columns=columns)
    snapshot = Report([DataDriftPreset(columns=columns)]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    results = [
        ColumnDrift(
            m["config"]["column"],
            str(m["config"]["method"]),
            float(m["value"]),
            float(m["config"]["threshold"]),
        )
        for m in snapshot.dict()["metrics"]
        if "ValueDrift" in str(m["config"].get("type"))
    ]
    summary = DriftSummary(results, score, len(ref), len(cur))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(out / "drift.html"))
        (out / "drift.json").write_text(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
    log.info(
        "drift: %.0f%% of features drifted; prediction drift: %s",
        100 * summary.drift_share,
        summary.prediction_drift,
    )
    return summary


@dataclass(frozen=True)
class QualitySummary:
    """Classification quality on a window's labelled rows, at the model's threshold."""

    labelled_rows: int
    frauds: int
    average_precision: float
    recall: float
    precision: float
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "labelled_rows": self.labelled_rows,
            "frauds": self.frauds,
            "average_precision": self.average_precision,
            "recall_at_threshold": self.recall,
            "precision_at_threshold": self.precision,
            "threshold": self.threshold,
        }


def _rates(labels: pd.Series, scores: pd.Series, threshold: float) -> tuple[float, float, float]:
    from sklearn.metrics import average_precision_score

    flagged = scores >= threshold
    hits = int((flagged & (labels == 1)).sum())
    frauds, alerts = int(labels.sum()), int(flagged.sum())
    ap = float(average_precision_score(labels, scores)) if frauds else float("nan")
    return ap, hits / frauds if frauds else float("nan"), hits / alerts if alerts else 0.0


def quality(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    target: str,
    score: str,
    threshold: float,
    out: Path | None = None,
    sample_rows: int = 50_000,
    seed: int = 0,
) -> QualitySummary:
    """AP, recall and precision at `threshold` on every labelled row of `current`.

    The HTML report (Evidently's classification quality, reference alongside) is drawn on
    seeded samples of at most `sample_rows` rows, and only when the window has both
    classes among its labels; the figures in quality.json use every labelled row.
    """
    labelled = current[current[target].notna()]
    labels = labelled[target].astype(int)
    ap, recall, precision = _rates(labels, labelled[score], threshold)
    summary = QualitySummary(len(labelled), int(labels.sum()), ap, recall, precision, threshold)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "quality.json").write_text(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
        if labels.nunique() == 2:
            _quality_html(
                sample(reference, sample_rows, seed),
                sample(labelled, sample_rows, seed),
                target,
                score,
                threshold,
                out / "quality.html",
            )
    return summary


def _quality_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    target: str,
    score: str,
    threshold: float,
    path: Path,
) -> None:
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationQuality

    definition = DataDefinition(
        classification=[BinaryClassification(target=target, prediction_probas=score, pos_label=1)]
    )

    def dataset(frame: pd.DataFrame) -> Dataset:
        data = pd.DataFrame({target: frame[target].astype(int), score: frame[score]})
        return Dataset.from_pandas(data, data_definition=definition)

    report = Report([ClassificationQuality(probas_threshold=threshold, pr_curve=True)])
    report.run(current_data=dataset(current), reference_data=dataset(reference)).save_html(
        str(path)
    )
