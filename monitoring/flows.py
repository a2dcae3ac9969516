"""The monitoring flow: report on a window, decide, alert, and retrain on RETRAIN.

The only Prefect module of `monitoring/`. A scheduled run (the `fraud-monitoring/hourly`
deployment) looks at the last `window_days` days; the simulation passes explicit windows.
On RETRAIN the labelled production period is fed back to the `generate` stage and the
`fraud-training` flow runs with its training block moved onto it; the gate decides, and the
scoring service picks up a new champion through its alias.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from monitoring import alerts, feedback
from monitoring.monitor import WindowResult, run_window
from pipelines import tracking, versioning
from pipelines.config import (
    DEFAULT_MONITORING_CONFIG,
    DEFAULT_PIPELINE_CONFIG,
    DEFAULT_PROJECT_CONFIG,
    MonitoringConfig,
    load_monitoring_config,
    load_pipeline_config,
    load_project_config,
)
from pipelines.flows.training import training_flow
from pipelines.promote import CHAMPION
from pipelines.schema import feature_columns

FLOW = "fraud-monitoring"  # the deployment is `fraud-monitoring/hourly` (prefect.yaml)
WEBHOOK_ENV = "FRAUDOPS_ALERT_WEBHOOK_URL"


@task(name="report", retries=1, retry_delay_seconds=5)
def report_task(
    mon: MonitoringConfig,
    project: str,
    pipeline: str,
    capture_dir: Path,
    start: dt.datetime,
    end: dt.datetime,
    label_files: list[Path],
) -> WindowResult:
    """Drift and quality of the window against the champion's reference, logged to MLflow."""
    identity = load_project_config(Path(project))
    features = feature_columns(load_pipeline_config(Path(pipeline)).features)
    return run_window(mon, identity, features, capture_dir, start, end, label_files)


@task(name="alert")
def alert_task(mon: MonitoringConfig, result: WindowResult) -> bool | None:
    """Post WARN/RETRAIN to the webhook (None when no webhook is configured)."""
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        get_run_logger().info("no %s set: %s not posted", WEBHOOK_ENV, result.decision.verdict)
        return None
    payload = {"source": "fraudops", **result.as_dict()}
    return alerts.post(url, payload, retries=mon.alerts.retries, timeout_s=mon.alerts.timeout_s)


@task(name="feedback")
def feedback_task(capture_dir: Path, label_files: list[Path], pipeline: str) -> feedback.Feedback:
    """Write the labelled production period where the `generate` stage reads it."""
    cfg = load_pipeline_config(Path(pipeline))
    return feedback.export(capture_dir, label_files, cfg.paths.feedback, cfg.features.columns)


def _capture_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    from serving.settings import load_settings  # the service's own capture location

    return load_settings().capture.dir


def _retrain(
    capture_dir: Path, label_files: list[Path], pipeline: str, project: str
) -> dict[str, Any]:
    log = get_run_logger()
    cfg = load_pipeline_config(Path(pipeline))
    spans = (cfg.train.train_days, cfg.features.label_delay_days, cfg.train.test_days)
    fed = feedback_task(capture_dir, label_files, pipeline)
    if not feedback.enough(fed, *spans):
        why = (
            f"retrain deferred: {fed.days} labelled production day(s); the training protocol "
            f"needs {sum(spans)} (train {spans[0]} + delay {spans[1]} + test {spans[2]})"
        )
        log.warning(why)
        return {"outcome": "deferred", "message": why}
    start = feedback.retrain_start(fed, *spans)
    log.info("retraining on %d labelled production rows, train.start_date=%s", fed.rows, start)
    # The latest fold ends on the last labelled day, whatever anchor the config uses.
    overrides = {"train.start_date": start.isoformat(), "train.anchor": "latest"}
    outcome = training_flow(pipeline, overrides, project)
    versioning.push()
    message = (
        f"retrained on {fed.rows} labelled production rows: version {outcome['version']}, "
        f"{outcome['gate']}; champion is version {outcome['champion']}"
    )
    return {"outcome": "retrained", "message": message, **outcome}


@flow(name=FLOW)
def monitoring_flow(
    config: str = str(DEFAULT_MONITORING_CONFIG),
    overrides: dict[str, Any] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    capture_dir: str | None = None,
    label_files: list[str] | None = None,
    pipeline: str = str(DEFAULT_PIPELINE_CONFIG),
    project: str = str(DEFAULT_PROJECT_CONFIG),
) -> dict[str, Any]:
    """Monitor [start, end) (default: the last `window_days` days); act on the decision."""
    mon = load_monitoring_config(Path(config), overrides)
    end = end or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = start or end - dt.timedelta(days=mon.window_days)
    captured, files = _capture_dir(capture_dir), [Path(f) for f in label_files or []]
    result = report_task(mon, project, pipeline, captured, start, end, files)
    verdict = result.decision.verdict
    get_run_logger().info(
        "%s -> %s: %s: %s", start, end, verdict, "; ".join(result.decision.reasons)
    )
    summary: dict[str, Any] = {**result.as_dict(), "alerted": None, "retrain": None}
    if verdict != "OK":
        summary["alerted"] = alert_task(mon, result)
    if verdict == "RETRAIN" and mon.retrain:
        summary["retrain"] = _retrain_current(result, captured, files, pipeline, project)
    return summary


def _retrain_current(
    result: WindowResult, capture_dir: Path, files: list[Path], pipeline: str, project: str
) -> dict[str, Any]:
    """Retrain only when the window was scored by the current champion."""
    name = load_project_config(Path(project)).registered_model_name
    champion = tracking.alias_version(name, CHAMPION)
    if champion is not None and result.model_version != champion:
        why = (
            f"retrain skipped: the window was scored by version {result.model_version}; "
            f"the champion is already version {champion}"
        )
        get_run_logger().info(why)
        return {"outcome": "skipped", "message": why}
    return _retrain(capture_dir, files, pipeline, project)
