"""Step `register`: log the evaluated model to MLflow, register it as `challenger`, and gate it.

Order matters for crash safety: the run, the model and the version are written first; the
version is tagged `complete` and only then given the `challenger` alias; the gate records its
verdict on the version; `champion` moves last, in `promote`, which refuses a version that is
incomplete or not passed by the gate. A crash at any point leaves `champion` where it was, and
a re-run finishes the job (a complete version with the same lineage is reused, not
duplicated) after marking the versions earlier crashes left incomplete as orphaned.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

import joblib
import pandas as pd

from pipelines import gate, tracking, version_status, versioning
from pipelines import train as protocol
from pipelines.config import PipelineConfig, ProjectConfig
from pipelines.coverage import resolve_folds
from pipelines.evaluate import score_fold
from pipelines.promote import CHALLENGER, CHAMPION, promote
from pipelines.schema import feature_columns
from pipelines.version_status import COMPLETE

log = logging.getLogger(__name__)

METRICS = "fraudops.test_metrics"
LOCK_TAG = "lineage.dvc_lock_md5"


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
    orphaned: tuple[int, ...] = ()


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
        [cfg.paths.reports, cfg.paths.metrics, cfg.paths.reference],
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
    tags = {**lineage, METRICS: tracking.to_json(summary["test"]), **version_status.registering()}
    mv = tracking.register(uri, project.registered_model_name, tags)
    tracking.set_version_tags(mv.name, mv.version, version_status.completed())
    log.info("register: run %s -> %s version %d", run_id, mv.name, mv.version)
    return mv.version


def _rescore(
    name: str, version: int, test: pd.DataFrame, fold: protocol.Fold, cfg: PipelineConfig
) -> dict[str, float] | None:
    """The champion's metrics on the challenger's test block (None if it cannot be scored)."""
    model, metadata = tracking.load_model(name, version)
    features = list(metadata.get("features", []))
    if not features or not set(features) <= set(test.columns):
        log.warning("register: champion %d uses features not in the data; not comparable", version)
        return None
    return score_fold(model, test, fold, features, cfg)[1]


@dataclass(frozen=True)
class Challenger:
    """A complete registered version holding the `challenger` alias, with its test metrics.

    `orphaned`: the versions this register found left incomplete by earlier ones, and marked.
    """

    version: int
    reused: bool
    metrics: dict[str, float]
    orphaned: tuple[int, ...] = ()


def register_challenger(cfg: PipelineConfig, project: ProjectConfig) -> Challenger:
    """Log and register the evaluated model (or reuse one with the same lineage) as challenger."""
    name = project.registered_model_name
    summary = json.loads((cfg.paths.metrics / "evaluate.json").read_text())
    lineage = versioning.lineage(cfg.paths.clean)
    tracking.configure(project.experiment_name)
    swept = version_status.sweep(name, dt.datetime.now(dt.UTC))
    if swept.orphaned:
        log.warning("register: marked orphaned (register never finished): %s", swept.orphaned)
    done = [
        v
        for v in tracking.find_versions(name, LOCK_TAG, lineage[LOCK_TAG])
        if v.tags.get(COMPLETE) == "true"
    ]
    if done:
        version = done[0].version
    else:
        fold = resolve_folds(cfg)[0]
        window = protocol.load_folds(cfg.paths.features, [fold])
        example = protocol.scoring_block(window, fold).head(5)
        version = _log_new_version(cfg, project, summary, lineage, example)
    tracking.set_alias(name, CHALLENGER, version)
    metrics = {k: float(v) for k, v in summary["test"].items()}
    return Challenger(version, bool(done), metrics, swept.orphaned)


def gate_challenger(
    cfg: PipelineConfig, project: ProjectConfig, challenger: Challenger
) -> tuple[gate.GateDecision, dict[str, float] | None]:
    """Decide on the challenger against the floors and the champion re-scored on its window."""
    name = project.registered_model_name
    tracking.configure(project.experiment_name)
    champion = tracking.alias_version(name, CHAMPION)
    if champion == challenger.version:
        decision = gate.GateDecision(False, [f"version {champion} is already champion"])
        return decision, None
    before = None
    if champion is not None:
        fold = resolve_folds(cfg)[0]
        window = protocol.load_folds(cfg.paths.features, [fold])
        before = _rescore(name, champion, window, fold, cfg)
    decision = gate.decide(challenger.metrics, before, cfg.gate)
    tracking.set_version_tags(name, challenger.version, version_status.gated(decision))
    log.info("gate: version %d: %s", challenger.version, decision.summary())
    return decision, before


def register(cfg: PipelineConfig, project: ProjectConfig, actor: str) -> Outcome:
    """Register the evaluated model as challenger; promote it if the gate and approval allow."""
    name = project.registered_model_name
    challenger = register_challenger(cfg, project)
    champion = tracking.alias_version(name, CHAMPION)
    decision, before = gate_challenger(cfg, project, challenger)
    if decision.passed and cfg.gate.approval == "auto":
        reason = f"gate (auto): {decision.summary()}"
        promote(name, challenger.version, reason, actor, challenger.metrics, before)
    return Outcome(
        challenger.version,
        challenger.reused,
        decision,
        champion,
        tracking.alias_version(name, CHAMPION),
        challenger.metrics,
        before,
        challenger.orphaned,
    )


def describe(outcome: Outcome) -> str:
    """A short human summary of what `register` did."""
    m = outcome.metrics
    lines = [
        f"version {outcome.version} ({'reused' if outcome.reused else 'new'}) is challenger: "
        f"AP {m['average_precision']:.3f}, ROC AUC {m['roc_auc']:.3f}, "
        f"CP@k {m['card_precision_at_k']:.3f} (all cards "
        f"{m['card_precision_at_k_all_cards']:.3f}), "
        f"recall@FPR {m['recall_at_fpr']:.3f}",
        f"gate: {outcome.decision.summary()}",
        f"champion: {outcome.champion_before} -> {outcome.champion_after}",
        orphans_line(outcome.orphaned),
    ]
    return "\n".join(lines)


def orphans_line(orphaned: tuple[int, ...]) -> str:
    """How many versions left incomplete by a killed register this run marked orphaned."""
    if not orphaned:
        return "orphaned versions marked: 0"
    listed = ", ".join(str(v) for v in orphaned)
    return f"orphaned versions marked: {len(orphaned)} ({listed}: register never finished)"
