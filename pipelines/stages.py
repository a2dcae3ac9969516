"""Stage runners: read config, call the domain module, write outputs and metrics.

One function per `dvc.yaml` stage, named as the stage; the CLI and the Prefect tasks call
these, so every entry point does exactly the same work.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import DataContractError
from pipelines.io import read_table, remove_outputs, write_json, write_parquet

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DriftScenario, MonitoringConfig, PipelineConfig

# Each runner imports the domain modules of its own stage, so a stage's code dependencies
# (the `deps:` of its `dvc.yaml` stage, checked by tests/unit/test_dvc_deps.py) are exactly
# what it runs, and editing one stage's module re-runs that stage only.

log = logging.getLogger(__name__)


def generate(cfg: PipelineConfig) -> Path:
    """Write the raw history: simulated, or the user's configured file mapped to the contract."""
    import pandas as pd

    from pipelines import generate as simulator
    from pipelines import schema
    from pipelines.source import load_source

    out = cfg.paths.raw
    remove_outputs(out)  # a failed run must not leave the previous source's rows to validate
    if cfg.source.kind == "file":
        declared = [c.name for c in cfg.features.columns]
        df = load_source(cfg.source, declared)  # refuses a file without rows, naming it
    else:
        df = simulator.simulate_history(cfg.generate)
        if df.empty:
            raise DataContractError("generate: the simulator produced no rows (see generate.*)")
    feedback = sorted(cfg.paths.feedback.glob("*.parquet")) if cfg.paths.feedback.is_dir() else []
    if feedback:
        fed = pd.concat([read_table(p) for p in feedback], ignore_index=True)
        fed = fed[~fed[schema.TRANSACTION_ID].isin(df[schema.TRANSACTION_ID])]  # history wins
        df = pd.concat([df, fed[df.columns]], ignore_index=True)
        log.info("generate: + %d labelled production rows from %s", len(fed), cfg.paths.feedback)
    write_parquet(df, out)
    log.info("generate: %d rows -> %s", len(df), out)
    return out


def generate_production(cfg: PipelineConfig, drift: DriftScenario | None, out: Path | None) -> Path:
    """Write a simulated production period after the history, with the given drift."""
    from pipelines import generate as simulator

    prod = cfg.production if drift is None else cfg.production.model_copy(update={"drift": drift})
    df = simulator.simulate_production(cfg.generate, prod)
    target = out or cfg.paths.production
    remove_outputs(target)
    write_parquet(df, target)
    log.info("generate: %d production rows (drift %s) -> %s", len(df), prod.drift, target)
    return target


def validate(cfg: PipelineConfig) -> Path:
    """Split raw rows into clean and quarantined; fail above the quarantine limit."""
    from pipelines.validate import enforce_limit, validate_transactions

    clean_path, quarantine_path = cfg.paths.clean, cfg.paths.quarantine
    metrics = cfg.paths.metrics / "validate.json"
    remove_outputs(clean_path, quarantine_path, metrics)
    raw = read_table(cfg.paths.raw)
    if raw.empty:
        raise DataContractError(f"{cfg.paths.raw}: has no rows")
    result = validate_transactions(raw, cfg.validate_, cfg.features.columns)
    write_parquet(result.quarantine, quarantine_path)
    write_json(result.counts, metrics)
    enforce_limit(result, cfg.validate_)
    write_parquet(result.clean, clean_path)
    return clean_path


def features(cfg: PipelineConfig) -> Path:
    """Compute the point-in-time features of the clean transactions."""
    from pipelines.features import build_features
    from pipelines.schema import feature_columns

    out = cfg.paths.features
    remove_outputs(out)
    rows = build_features(cfg.paths.clean, out, cfg.features, cfg.engine)
    write_json(
        {"rows": rows, "features": feature_columns(cfg.features)},
        cfg.paths.metrics / "features.json",
    )
    return out


def materialize(cfg: PipelineConfig) -> Path:
    """Write the events that seed the scoring service's online store."""
    from pipelines.materialize import materialize as materialize_events

    result = materialize_events(cfg.paths.clean, cfg.paths.online, cfg.features)
    write_json(
        {
            "events": result.rows,
            "days": result.days,
            "as_of": result.as_of.isoformat(),
        },
        cfg.paths.metrics / "materialize.json",
    )
    return cfg.paths.online


def train(cfg: PipelineConfig) -> Path:
    """Fit the configured estimator with its configured hyper-parameters on fold 0's
    training block (`make tune` proposes new ones as a change of the config, never here)."""
    import joblib

    from pipelines import train as protocol
    from pipelines.coverage import resolve_folds
    from pipelines.schema import feature_columns

    out = cfg.paths.model
    remove_outputs(out, cfg.paths.model_params)
    all_folds = resolve_folds(cfg)  # every fold's days in the data, before any fit
    features = feature_columns(cfg.features)
    frame = protocol.load_folds(cfg.paths.features, all_folds)  # and both classes per block
    params = cfg.train.estimator_params()
    rows = protocol.training_block(frame, all_folds[0])
    started = time.perf_counter()
    model = protocol.fit(cfg.train, rows, features, params)
    seconds = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out)
    write_json(params, cfg.paths.model_params)
    write_json(
        {
            "estimator": cfg.train.estimator,
            "rows": len(rows),
            "frauds": int(rows["tx_fraud"].sum()),
            **all_folds[0].as_dict(),
        },
        cfg.paths.metrics / "train.json",
    )
    log.info("train: %s on %d rows in %.1f s -> %s", cfg.train.estimator, len(rows), seconds, out)
    return out


def evaluate(cfg: PipelineConfig) -> Path:
    """Evaluate the trained model: metrics, threshold, prequential folds, explanations."""
    import joblib

    from pipelines import explain, plots
    from pipelines import train as protocol
    from pipelines.coverage import resolve_folds
    from pipelines.evaluate import evaluate as evaluate_model
    from pipelines.schema import feature_columns, history_column

    out = cfg.paths.reports
    model = joblib.load(cfg.paths.model)
    features = feature_columns(cfg.features)
    all_folds = resolve_folds(cfg)
    params = json.loads(cfg.paths.model_params.read_text())
    frame = protocol.load_folds(cfg.paths.features, all_folds)
    result = evaluate_model(model, frame, all_folds, features, cfg, params)
    importances = explain.importances(
        model, result.scored, features, cfg.evaluate, cfg.train.random_state
    )
    slices = explain.slices(
        result.scored, cfg.evaluate, result.threshold, history_column(cfg.features)
    )
    out.mkdir(parents=True, exist_ok=True)
    importances.to_csv(out / "importances.csv", index=False)
    slices.to_csv(out / "slices.csv", index=False)
    _curve_points(result.scored).to_csv(out / "scores.csv", index=False)
    plots.write_all(result.scored, importances, slices, out)
    write_json(result.summary(), cfg.paths.metrics / "evaluate.json")
    return out


def reference(cfg: PipelineConfig, monitoring: MonitoringConfig) -> Path:
    """Write the monitoring reference window: a sample of the test block, scored."""
    import joblib

    from pipelines import train as protocol
    from pipelines.coverage import resolve_folds
    from pipelines.reference import FRAME, META, build_reference, file_md5, meta_dict
    from pipelines.schema import feature_columns

    out = cfg.paths.reference
    model = joblib.load(cfg.paths.model)
    fold = resolve_folds(cfg)[0]
    block = protocol.test_block(protocol.load_folds(cfg.paths.features, [fold]), fold)
    threshold = float(json.loads((cfg.paths.metrics / "evaluate.json").read_text())["threshold"])
    frame, meta = build_reference(
        model,
        block,
        feature_columns(cfg.features),
        fold,
        threshold,
        monitoring.sample_rows,
        monitoring.seed,
        file_md5(cfg.paths.model),
    )
    write_parquet(frame, out / FRAME)
    write_json(meta_dict(meta), out / META)
    log.info("reference: %d of %d test-block rows -> %s", meta.rows, meta.block_rows, out)
    return out


def _curve_points(scored: pd.DataFrame) -> pd.DataFrame:
    """Label and score of every test row: what curves and histograms are drawn from."""
    return scored[["transaction_id", "tx_fraud", "score"]].sort_values("transaction_id")
