"""Stage runners: read config, call the domain module, write outputs and metrics.

One function per `dvc.yaml` stage, named as the stage; the CLI and the Prefect tasks call
these, so every entry point does exactly the same work.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipelines import generate as simulator
from pipelines.config import DriftScenario, PipelineConfig
from pipelines.features import build_features, feature_columns
from pipelines.io import read_table, remove_outputs, write_json, write_parquet
from pipelines.source import load_source
from pipelines.validate import enforce_limit, validate_transactions

log = logging.getLogger(__name__)


def generate(cfg: PipelineConfig) -> Path:
    """Write the raw history: simulated, or the user's configured file mapped to the contract."""
    out = cfg.paths.raw
    if cfg.source.kind == "file":
        df = load_source(cfg.source)
    else:
        df = simulator.simulate_history(cfg.generate)
    write_parquet(df, out)
    log.info("generate: %d rows -> %s", len(df), out)
    return out


def generate_production(cfg: PipelineConfig, drift: DriftScenario | None, out: Path | None) -> Path:
    """Write a simulated production period after the history, with the given drift."""
    prod = cfg.production if drift is None else cfg.production.model_copy(update={"drift": drift})
    df = simulator.simulate_production(cfg.generate, prod)
    target = out or cfg.paths.production
    write_parquet(df, target)
    log.info("generate: %d production rows (drift %s) -> %s", len(df), prod.drift, target)
    return target


def validate(cfg: PipelineConfig) -> Path:
    """Split raw rows into clean and quarantined; fail above the quarantine limit."""
    clean_path, quarantine_path = cfg.paths.clean, cfg.paths.quarantine
    remove_outputs(clean_path)
    result = validate_transactions(read_table(cfg.paths.raw), cfg.validate_)
    write_parquet(result.quarantine, quarantine_path)
    write_json(result.counts, cfg.paths.metrics / "validate.json")
    enforce_limit(result, cfg.validate_)
    write_parquet(result.clean, clean_path)
    return clean_path


def features(cfg: PipelineConfig) -> Path:
    """Compute the point-in-time features of the clean transactions."""
    out = cfg.paths.features
    remove_outputs(out)
    rows = build_features(cfg.paths.clean, out, cfg.features)
    write_json(
        {"rows": rows, "features": feature_columns(cfg.features)},
        cfg.paths.metrics / "features.json",
    )
    return out
