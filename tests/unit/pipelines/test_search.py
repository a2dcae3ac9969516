"""The search spaces of `make tune` and the study they name: every estimator the config
supports has one, its params fit, and the study name changes exactly when the trials'
values would mean something else."""

from __future__ import annotations

import datetime as dt
from typing import Any, get_args

import numpy as np
import optuna
import pandas as pd
import pytest

from pipelines.config import EstimatorName, Train, load_pipeline_config
from pipelines.search import FoldData, fold_scores, search_space, space_ranges, study_name
from pipelines.train import Fold
from tests.conftest import REPO_ROOT

ESTIMATORS = list(get_args(EstimatorName))
FOLDS = [Fold(0, dt.date(2018, 7, 25), dt.date(2018, 8, 8), dt.date(2018, 8, 15), 7)]


def _train(**changes: Any) -> Train:
    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml").train
    return cfg.model_copy(update=changes)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_estimator_has_a_space_of_its_config_keys(estimator: str) -> None:
    cfg = _train(estimator=estimator)
    ranges = space_ranges(estimator)
    assert ranges, f"no search space for {estimator}"
    assert set(ranges) <= set(cfg.estimator_params())
    configured = cfg.estimator_params()
    outside = {
        k: configured[k] for k, (low, high, _) in ranges.items() if not low <= configured[k] <= high
    }
    assert not outside, f"configured {estimator} params outside the space: {outside}"


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_a_stored_trial_replays_to_the_same_params(estimator: str) -> None:
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    params = search_space(trial, estimator)
    assert search_space(optuna.trial.FixedTrial(trial.params), estimator) == params


@pytest.mark.parametrize("end", [0, 1], ids=["low", "high"])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_the_ends_of_the_space_fit_and_score(estimator: str, end: int) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(3000, 3)), columns=["a", "b", "c"])
    y = (x["a"] + rng.normal(scale=0.5, size=3000) > 1).astype(int).to_numpy()
    data = [FoldData(0, x[:2400], y[:2400], x[2400:], y[2400:])]  # leaves of 300 fit
    cfg = _train(estimator=estimator)
    corner = {k: r[end] for k, r in space_ranges(estimator).items()}
    params = {**cfg.estimator_params(), **search_space(optuna.trial.FixedTrial(corner), estimator)}
    [(index, ap)] = list(fold_scores(cfg, params, data))
    assert index == 0
    assert 0.3 < ap <= 1.0, "a signal this plain is found"


def test_the_study_name_follows_what_the_values_mean() -> None:
    cfg = _train()
    features = {"customer_windows_days": [1, 7, 30]}
    name = study_name(cfg, features, FOLDS)
    assert name.startswith("hist_gradient_boosting-")
    tuned = cfg.hist_gradient_boosting.model_copy(update={"max_iter": 123})
    assert study_name(_train(hist_gradient_boosting=tuned), features, FOLDS) == name, (
        "writing the best params back continues the same study"
    )
    assert study_name(cfg, {"customer_windows_days": [1, 14]}, FOLDS) != name
    assert study_name(cfg, features, FOLDS[:0]) != name
    assert study_name(_train(random_state=1), features, FOLDS) != name
    fixed = cfg.hist_gradient_boosting.model_copy(update={"early_stopping": True})
    assert study_name(_train(hist_gradient_boosting=fixed), features, FOLDS) != name
