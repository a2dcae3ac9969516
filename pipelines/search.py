"""What a `make tune` trial fits and scores, free of Optuna: the search space of each
estimator, the folds cut once for every trial, and the name of the study they make up.

`search_space` takes any object with Optuna's `suggest_int` / `suggest_float`: a trial, a
`FixedTrial` replaying stored params, or `space_ranges`' recorder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import average_precision_score

from pipelines import schema
from pipelines.config import Train
from pipelines.train import Fold, make_estimator, scoring_block, training_block

if TYPE_CHECKING:
    import pandas as pd

LEAVES_MAX = 16  # serving/compiled.py BITS: a tree with more leaves is scored uncompiled


def _round(value: float) -> float:
    """Three significant digits: the model fitted is the one the config diff shows."""
    return float(f"{value:.3g}")


def search_space(trial: Any, estimator: str) -> dict[str, Any]:
    """The hyper-parameters searched for `estimator` (names as in configs/pipeline.yaml);
    the estimator's other hyper-parameters keep their configured values."""
    if estimator == "hist_gradient_boosting":
        return {
            "max_iter": trial.suggest_int("max_iter", 50, 400, log=True),
            "learning_rate": _round(trial.suggest_float("learning_rate", 0.01, 0.3, log=True)),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 7, LEAVES_MAX),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 10, 300, log=True),
            "l2_regularization": _round(
                trial.suggest_float("l2_regularization", 1e-3, 10, log=True)
            ),
            "max_features": _round(trial.suggest_float("max_features", 0.3, 1.0)),
        }
    if estimator == "random_forest":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300, log=True),
            "max_depth": trial.suggest_int("max_depth", 4, 30),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        }
    if estimator == "logistic_regression":
        return {"C": _round(trial.suggest_float("C", 1e-3, 100, log=True))}
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "learning_rate": _round(trial.suggest_float("learning_rate", 0.01, 0.3, log=True)),
        "subsample": _round(trial.suggest_float("subsample", 0.5, 1.0)),
    }


class _Ranges:
    """A stand-in trial that records each suggestion's range (and answers its low end)."""

    def __init__(self) -> None:
        self.ranges: dict[str, tuple[float, float, bool]] = {}

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> int:
        self.ranges[name] = (low, high, log)
        return low

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        self.ranges[name] = (low, high, log)
        return low


def space_ranges(estimator: str) -> dict[str, tuple[float, float, bool]]:
    """Each searched hyper-parameter's (low, high, log scale)."""
    recorder = _Ranges()
    search_space(recorder, estimator)
    return recorder.ranges


def study_name(cfg: Train, features: dict[str, Any], all_folds: list[Fold]) -> str:
    """`<estimator>-<hash>` of what the trials' values depend on besides the data."""
    ranges = space_ranges(cfg.estimator)
    fixed = {k: v for k, v in cfg.estimator_params().items() if k not in ranges}
    key = {
        "space": ranges,
        "fixed": fixed,
        "features": features,
        "folds": [f.as_dict() for f in all_folds],
        "random_state": cfg.random_state,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return f"{cfg.estimator}-{digest[:10]}"


@dataclass(frozen=True)
class FoldData:
    """One fold's blocks as the estimator sees them: cut once, fitted by every trial."""

    index: int
    x_train: pd.DataFrame
    y_train: np.ndarray
    x_test: pd.DataFrame
    y_test: np.ndarray


def cut_folds(frame: pd.DataFrame, all_folds: list[Fold], features: list[str]) -> list[FoldData]:
    """Each fold's training block and its scoring block (the test block `evaluate` scores)."""
    out = []
    for fold in all_folds:
        train, test = training_block(frame, fold), scoring_block(frame, fold)
        out.append(
            FoldData(
                fold.index,
                train[features].astype(np.float64),
                train[schema.TX_FRAUD].to_numpy(),
                test[features].astype(np.float64),
                test[schema.TX_FRAUD].to_numpy(),
            )
        )
    return out


def fold_scores(
    cfg: Train, params: dict[str, Any], data: list[FoldData]
) -> Iterator[tuple[int, float]]:
    """Fit and score the folds in order, yielding each fold's index and average precision."""
    for fold in data:
        model = make_estimator(cfg, params).fit(fold.x_train, fold.y_train)
        proba = model.predict_proba(fold.x_test)[:, 1]
        yield fold.index, float(average_precision_score(fold.y_test, proba))
