"""Shared fixtures: a tiny, fast configuration whose outputs live in a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.config import PipelineConfig, load_pipeline_config

REPO_ROOT = Path(__file__).resolve().parents[1]

# Small enough for seconds, large enough that every fraud scenario occurs.
TINY: dict[str, Any] = {
    "generate.n_customers": 120,
    "generate.n_terminals": 240,
    "generate.n_days": 40,
    "generate.fraud.compromised_terminals_per_day": 1,
    "generate.fraud.compromised_customers_per_day": 1,
    "production.n_days": 10,
    "train.start_date": "2018-04-16",
    "train.folds": 2,
    "train.hist_gradient_boosting.max_iter": 50,
    "evaluate.permutation_repeats": 1,
}


def tiny_config(tmp_path: Path, **extra: Any) -> PipelineConfig:
    """The project's pipeline config at tiny scale, writing under `tmp_path`."""
    paths = {
        "paths.raw": str(tmp_path / "raw.parquet"),
        "paths.production": str(tmp_path / "production.parquet"),
        "paths.clean": str(tmp_path / "clean.parquet"),
        "paths.quarantine": str(tmp_path / "quarantine.parquet"),
        "paths.features": str(tmp_path / "features.parquet"),
        "paths.model": str(tmp_path / "model.joblib"),
        "paths.reports": str(tmp_path / "reports"),
        "paths.metrics": str(tmp_path / "metrics"),
    }
    return load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml", {**TINY, **paths, **extra})


@pytest.fixture
def tiny(tmp_path: Path) -> PipelineConfig:
    """A tiny pipeline config writing under a temporary folder."""
    return tiny_config(tmp_path)
