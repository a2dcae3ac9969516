"""Step `register`: log the evaluated model to MLflow, register it as `challenger`, and gate it.

Order matters for crash safety: the run, the model and the version are written first; the
version is tagged `complete` and only then given the `challenger` alias; `champion` moves
last, in `promote`. A crash at any point leaves `champion` where it was, and a re-run
finishes the job (a complete version with the same lineage is reused, not duplicated).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import joblib
import pandas as pd

from pipelines import gate, tracking, versioning
from pipelines import train as protocol
from pipelines.config import PipelineConfig, ProjectConfig
from pipelines.evaluate import score_fold
from pipelines.features import feature_columns
from pipelines.promote import CHALLENGER, CHAMPION, promote

log = logging.getLogger(__name__)

COMPLETE = "fraudops.complete"
METRICS = "fraudops.test_metrics"
GATE = "fraudops.gate"


@dataclass(frozen=True)
class Outcome:
    """What `register` did: the version, whether it is new, the gate's answer, the champion."""

    version: int
    reused: bool
    decision: gate.GateDecision
    champion_before: int | None
    champion_after: int | None
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def _run_metrics(summary: dict[str, Any]) -> dict[str, float]:
    metrics = {f"test.{k}": float(v) for k, v in summary["test"].items()}
    for name, stats in summary["prequential"].items():
        metrics.update({f"prequential.{name}.{k}": float(v) for k, v in stats.items()})
    return {**metrics, "threshold": float(summary["threshold"])}


def _log_new_version(
    cfg: PipelineConfig,
    project: ProjectConfig,
    summary: dict[str, Any],
    lineage: dict[str, str],
    example: pd.DataFrame,
) -> int:
    experiment_id = tracking.configure(project.experiment_name)
    run_id = tracking.log_run(
        experiment_id,
        _flatten(cfg.model_dump(mode="json", by_alias=True)),
        _run_metrics(summary),
        {**lineage, "estimator": cfg.train.estimator},
        [cfg.paths.reports, cfg.paths.metrics],
    )
    features = feature_columns(cfg.features)
    metadata = {
        "threshold": summary["threshold"],
        "features": features,
        "estimator": cfg.train.estimator,
        **lineage,
    }
    uri = tracking.log_model(
        run_id, joblib.load(cfg.paths.model), example[features], metadata, cfg.train.estimator
    )
    mv = tracking.register(
        uri, project.registered_model_name, {**lineage, METRICS: tracking.to_json(summary["test"])}
    )
    tracking.set_version_tags(mv.name, mv.version, {COMPLETE: "true"})
    log.info("register: run %s -> %s version %d", run_id, mv.name, mv.version)
    return mv.version


def _rescore(
    name: str, version: int, test: pd.DataFrame, cfg: PipelineConfig
) -> dict[str, float] | None:
    """The champion's metrics on the challenger's test block (None if it cannot be scored)."""
    model, metadata = tracking.load_model(name, version)
    features = list(metadata.get("features", []))
    if not features or not set(features) <= set(test.columns):
        log.warning("register: champion %d uses features not in the data; not comparable", version)
        return None
    fold = protocol.folds(cfg.train, cfg.features.label_delay_days)[0]
    return score_fold(model, test, fold, features, cfg)[1]


def register(cfg: PipelineConfig, project: ProjectConfig, actor: str) -> Outcome:
    """Register the evaluated model as challenger; promote it if the gate and approval allow."""
    name = project.registered_model_name
    summary = json.loads((cfg.paths.metrics / "evaluate.json").read_text())
    lineage = versioning.lineage(cfg.paths.clean)
    tracking.configure(project.experiment_name)
    done = [
        v
        for v in tracking.find_versions(
            name, "lineage.dvc_lock_md5", lineage["lineage.dvc_lock_md5"]
        )
        if v.tags.get(COMPLETE) == "true"
    ]
    all_folds = protocol.folds(cfg.train, cfg.features.label_delay_days)
    window = protocol.load_folds(cfg.paths.features, all_folds[:1])
    version = (
        done[0].version
        if done
        else _log_new_version(
            cfg, project, summary, lineage, protocol.test_set(window, all_folds[0]).head(5)
        )
    )
    tracking.set_alias(name, CHALLENGER, version)
    champion = tracking.alias_version(name, CHAMPION)
    metrics = {k: float(v) for k, v in summary["test"].items()}
    before = _rescore(name, champion, window, cfg) if champion not in (None, version) else None
    if champion == version:
        decision = gate.GateDecision(False, [f"version {version} is already champion"])
    else:
        decision = gate.decide(metrics, before, cfg.gate)
    tracking.set_version_tags(name, version, {GATE: decision.summary()})
    log.info("register: gate for version %d: %s", version, decision.summary())
    if decision.passed and cfg.gate.approval == "auto":
        promote(name, version, f"gate (auto): {decision.summary()}", actor, metrics, before)
    return Outcome(
        version,
        bool(done),
        decision,
        champion,
        tracking.alias_version(name, CHAMPION),
        metrics,
        before,
    )
