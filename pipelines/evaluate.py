"""Stage `evaluate`: test-block metrics, the decision threshold, prequential validation,
explanations and slices of the trained model.

Fold 0 scores the model that `train` fitted; folds 1..K-1 fit the same estimator on their
own (earlier) training blocks, so the prequential mean and spread say how stable the
configuration is over time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin

from pipelines import schema
from pipelines.config import PipelineConfig
from pipelines.metrics import classification_metrics, threshold_at_fpr
from pipelines.train import Fold, fit, scoring_block, training_block

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """Everything an evaluation produces; `summary()` is what goes to metrics/evaluate.json."""

    threshold: float
    test: dict[str, float]
    per_fold: list[dict[str, Any]]
    scored: pd.DataFrame = field(repr=False)

    def prequential(self) -> dict[str, dict[str, float]]:
        names = self.test.keys()
        values = {n: [f[n] for f in self.per_fold] for n in names}
        return {n: {"mean": float(np.mean(v)), "std": float(np.std(v))} for n, v in values.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "test": self.test,
            "prequential": self.prequential(),
            "folds": self.per_fold,
        }


def score(model: ClassifierMixin, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Fraud probability of each row."""
    proba = model.predict_proba(frame[features].astype(np.float64))
    return np.asarray(proba[:, 1], dtype=np.float64)


def score_fold(
    model: ClassifierMixin,
    frame: pd.DataFrame,
    fold: Fold,
    features: list[str],
    cfg: PipelineConfig,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score a fold's test block; return the scored rows and their metrics. A block without
    both classes (or without rows) stops in one line before the model or a metric sees it."""
    test = scoring_block(frame, fold)
    scored = test.assign(score=score(model, test, features))
    metrics = classification_metrics(scored, cfg.evaluate.top_k, cfg.evaluate.recall_at_fpr)
    return scored, metrics


def evaluate(
    model: ClassifierMixin,
    frame: pd.DataFrame,
    all_folds: list[Fold],
    features: list[str],
    cfg: PipelineConfig,
    params: dict[str, Any] | None = None,
) -> Evaluation:
    """Evaluate `model` on fold 0, and the same estimator and `params` on the other folds
    (`all_folds`, from `coverage.resolve_folds`)."""
    scored, test_metrics = score_fold(model, frame, all_folds[0], features, cfg)
    threshold = threshold_at_fpr(
        scored[schema.TX_FRAUD], scored["score"], cfg.evaluate.threshold_fpr
    )
    per_fold = [{**all_folds[0].as_dict(), **test_metrics}]
    for fold in all_folds[1:]:
        fold_model = fit(cfg.train, training_block(frame, fold), features, params)
        _, metrics = score_fold(fold_model, frame, fold, features, cfg)
        per_fold.append({**fold.as_dict(), **metrics})
        log.info("evaluate: fold %d AP %.3f", fold.index, metrics["average_precision"])
    log.info(
        "evaluate: test AP %.3f AUC %.3f CP@%d %.3f (all cards %.3f), threshold %.4f",
        test_metrics["average_precision"],
        test_metrics["roc_auc"],
        cfg.evaluate.top_k,
        test_metrics["card_precision_at_k"],
        test_metrics["card_precision_at_k_all_cards"],
        threshold,
    )
    return Evaluation(threshold, test_metrics, per_fold, scored)
