"""Optional hyper-parameter search with Optuna (`train.tuning.enabled`; off in `make run`).

Trials fit on fold 1's training block and are scored (average precision) on fold 1's test
block: older than fold 0, whose test block stays untouched for the final evaluation. Each
trial is logged as a nested MLflow run under one parent run.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.metrics import average_precision_score

from pipelines import schema, tracking
from pipelines.config import Train
from pipelines.train import Fold, fit, scoring_block, training_block

log = logging.getLogger(__name__)


def search_space(trial: Any, estimator: str) -> dict[str, Any]:
    """The hyper-parameters to search for `estimator` (names as in configs/pipeline.yaml)."""
    if estimator == "hist_gradient_boosting":
        return {
            "max_iter": trial.suggest_int("max_iter", 50, 400, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 7, 63, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 10, 300, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-3, 10, log=True),
            "max_features": trial.suggest_float("max_features", 0.3, 1.0),
            "early_stopping": False,
        }
    if estimator == "random_forest":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300, log=True),
            "max_depth": trial.suggest_int("max_depth", 4, 30),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        }
    if estimator == "logistic_regression":
        return {"C": trial.suggest_float("C", 1e-3, 100, log=True), "max_iter": 1000}
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
    }


def tune(
    cfg: Train, frame: pd.DataFrame, fold: Fold, features: list[str], experiment: str
) -> dict[str, Any]:
    """Search `cfg.tuning.n_trials` settings; log trials to MLflow; return the best params."""
    import optuna

    train, valid = training_block(frame, fold), scoring_block(frame, fold)  # both classes

    def objective(trial: optuna.Trial) -> float:
        params = search_space(trial, cfg.estimator)
        model = fit(cfg, train, features, params)
        proba = model.predict_proba(valid[features].astype(float))[:, 1]
        return float(average_precision_score(valid[schema.TX_FRAUD], proba))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=cfg.random_state)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=cfg.tuning.n_trials, n_jobs=cfg.tuning.n_jobs)
    trials = [(t.params, float(t.value)) for t in study.trials if t.value is not None]
    tracking.log_search(
        tracking.configure(experiment),
        cfg.estimator,
        trials,
        {"fold": fold.index, **fold.as_dict()},
    )
    best = {**search_space(optuna.trial.FixedTrial(study.best_params), cfg.estimator)}
    log.info("tune: best AP %.4f of %d trials: %s", study.best_value, len(trials), best)
    return best
