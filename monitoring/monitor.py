"""One monitoring window: captured predictions of [start, end) against the champion's
reference -> drift and quality reports -> a decision, logged as an MLflow run.

No Prefect here (monitoring/flows.py orchestrates); MLflow calls go through
`pipelines.tracking`, Evidently through `monitoring.reports`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring import labels
from monitoring.decisions import Decision, Quality, decide
from monitoring.reports import DriftSummary, QualitySummary, drift, quality
from monitoring.windows import read_window
from pipelines import schema, tracking
from pipelines.config import MonitoringConfig, ProjectConfig
from pipelines.reference import FRAME, META, SCORE

log = logging.getLogger(__name__)

NOT_FEATURES = {schema.TRANSACTION_ID, schema.TX_DATETIME, schema.TX_FRAUD, SCORE}


@dataclass(frozen=True)
class WindowResult:
    """What one monitoring window found and decided."""

    start: dt.datetime
    end: dt.datetime
    rows: int
    model_version: int | None
    drift: DriftSummary | None
    quality: QualitySummary | None
    reference_ap: float | None
    labels: labels.LabelCounts
    decision: Decision
    folder: Path | None
    run_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "model_version": self.model_version,
            "drift": self.drift.as_dict() if self.drift else None,
            "quality": self.quality.as_dict() if self.quality else None,
            "reference_average_precision": self.reference_ap,
            "labels": vars(self.labels),
            "decision": self.decision.verdict,
            "reasons": self.decision.reasons,
            "folder": str(self.folder) if self.folder else None,
            "mlflow_run_id": self.run_id,
        }


def load_reference(model: str, version: int, cache: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The reference window registered with a model version (downloaded once per version)."""
    local = cache / f"{model}-v{version}" / "reference"
    if not (local / META).exists():
        local = tracking.download_artifacts(model, version, "reference", local.parent)
    meta: dict[str, Any] = json.loads((local / META).read_text())
    return pd.read_parquet(local / FRAME), meta


def folder_name(start: dt.datetime, end: dt.datetime) -> str:
    """One dated folder per window: `<start>--<end>` in compact ISO form."""
    return f"{start:%Y-%m-%dT%H%M}--{end:%Y-%m-%dT%H%M}"


def run_window(
    mon: MonitoringConfig,
    project: ProjectConfig,
    captured_features: list[str],
    capture_dir: Path,
    start: dt.datetime,
    end: dt.datetime,
    label_files: list[Path] | None = None,
) -> WindowResult:
    """Report on the window, decide, and log it all to the monitoring experiment.

    `captured_features` are the feature names the service captures (its config's).
    """
    name = project.registered_model_name
    window = read_window(
        capture_dir, captured_features, start, end, mon.sample_rows, mon.seed, label_files
    )
    counts, unknown = window.labels, window.unknown
    if len(unknown):
        log.info("labels: %d label(s) for transactions never scored, kept aside", len(unknown))
    if window.rows == 0 or window.model_version is None:
        decision = Decision("OK", [f"no captured predictions between {start} and {end}"])
        return WindowResult(start, end, 0, None, None, None, None, counts, decision, None, None)
    version = window.model_version
    reference, meta = load_reference(name, version, mon.reports_dir / ".references")
    features = [c for c in reference.columns if c in set(captured_features) - NOT_FEATURES]
    folder = mon.reports_dir / folder_name(start, end)
    summary = drift(reference, window.sample, features, SCORE, mon.sample_rows, mon.seed, folder)
    threshold = float(meta["threshold"])
    found = quality(
        reference,
        window.labelled,
        schema.TX_FRAUD,
        SCORE,
        threshold,
        folder,
        mon.sample_rows,
        mon.seed,
    )
    judged = Quality(found.labelled_rows, found.average_precision) if found.labelled_rows else None
    reference_ap = float(meta["average_precision"])
    decision = decide(
        summary.drift_share, summary.prediction_drift, judged, reference_ap, mon.decisions
    )
    result = WindowResult(
        start,
        end,
        window.rows,
        version,
        summary,
        found,
        reference_ap,
        counts,
        decision,
        folder,
        None,
    )
    (folder / "summary.json").write_text(json.dumps(result.as_dict(), indent=2, default=str))
    run_id = _log(project, result, unknown)
    return WindowResult(**{**vars(result), "run_id": run_id})


def _log(project: ProjectConfig, result: WindowResult, unknown: pd.DataFrame) -> str:
    assert result.drift is not None
    assert result.quality is not None
    assert result.folder is not None
    if len(unknown):
        unknown.to_csv(result.folder / "unknown_labels.csv", index=False)
    q = result.quality
    metrics = {
        "rows": float(result.rows),
        "drift_share": result.drift.drift_share,
        "prediction_drift": float(result.drift.prediction_drift),
        "labelled_rows": float(q.labelled_rows),
        "labels.received": float(result.labels.received),
        "labels.duplicates": float(result.labels.duplicates),
        "labels.unknown": float(result.labels.unknown),
    }
    if q.labelled_rows and q.frauds:
        metrics |= {
            "average_precision": q.average_precision,
            "recall_at_threshold": q.recall,
            "precision_at_threshold": q.precision,
        }
    experiment = tracking.configure(project.monitoring_experiment_name)
    return tracking.log_run(
        experiment,
        {"start": result.start.isoformat(), "end": result.end.isoformat()},
        metrics,
        {
            "model_name": project.registered_model_name,
            "model_version": str(result.model_version),
            "decision": result.decision.verdict,
            "reasons": "; ".join(result.decision.reasons)[:5000],
        },
        [result.folder],
        what="logging the monitoring run",
    )
