"""Optional Optuna search: trials become nested MLflow runs; the best params are used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import stages, tracking
from tests.conftest import tiny_config

pytestmark = pytest.mark.integration


def test_tuning_logs_nested_trials_and_trains_with_the_best(
    registered_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(registered_project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tiny_config(
        tmp_path,
        **{"train.tuning.enabled": True, "train.tuning.n_trials": 3, "train.tuning.n_jobs": 1},
    )
    for stage in (stages.generate, stages.validate, stages.features, stages.train):
        stage(cfg)
    params = json.loads(cfg.paths.model_params.read_text())
    assert set(params) == set(cfg.train.estimator_params())
    assert json.loads((cfg.paths.metrics / "train.json").read_text())["tuned"] is True
    import mlflow

    tracking.configure("fraudops")
    runs = mlflow.search_runs(
        experiment_names=["fraudops"],
        filter_string="tags.`fraudops.kind` = 'hyper-parameter search'",
    )
    parent = runs.iloc[0]["run_id"]
    trials = mlflow.search_runs(
        experiment_names=["fraudops"], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert len(trials) == 3
    assert trials["metrics.validation.average_precision"].notna().all()
    stages.evaluate(cfg)  # the other folds refit with the same (tuned) params
