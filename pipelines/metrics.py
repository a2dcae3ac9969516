"""Fraud detection metrics: pure functions of labels and scores (no I/O, no MLflow).

Card precision@k is the fraud handbook's: per day, the share of the k cards with the
highest score that are really compromised, averaged over days. Ties at the k-th score are
resolved by expectation (as if tied cards were ordered at random), so the value does not
depend on row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def precision_at_k(labels: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Share of frauds among the `k` highest scores (over k, even when fewer items exist)."""
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    if y.size == 0:
        return 0.0
    if y.size <= k:
        return float(y.sum() / k)
    cutoff = np.sort(s)[::-1][k - 1]
    above = s > cutoff
    tied = s == cutoff
    slots = k - int(above.sum())  # how many of the tied items make it into the top k
    expected = y[above].sum() + slots * y[tied].mean()
    return float(expected / k)


def card_precision_at_k(
    frame: pd.DataFrame,
    k: int,
    *,
    day: str = "day",
    card: str = "customer_id",
    label: str = "tx_fraud",
    score: str = "score",
) -> float:
    """Mean over days of precision@k on cards (a card: its max score and label that day)."""
    if frame.empty:
        return 0.0
    cards = frame.groupby([day, card], sort=True)[[label, score]].max()
    per_day = [precision_at_k(g[label], g[score], k) for _, g in cards.groupby(level=0)]
    return float(np.mean(per_day))


def recall_at_fpr(labels: ArrayLike, scores: ArrayLike, max_fpr: float) -> float:
    """Highest recall reachable with a false-positive rate of at most `max_fpr`."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(tpr[fpr <= max_fpr].max())


def threshold_at_fpr(labels: ArrayLike, scores: ArrayLike, max_fpr: float) -> float:
    """The lowest score threshold whose false-positive rate stays at or below `max_fpr`."""
    fpr, _, thresholds = roc_curve(labels, scores)
    allowed = thresholds[fpr <= max_fpr]
    return float(min(allowed.min(), 1.0))


def classification_metrics(
    frame: pd.DataFrame, k: int, max_fpr: float, *, label: str = "tx_fraud", score: str = "score"
) -> dict[str, float]:
    """ROC AUC, average precision, card precision@k and recall at the given FPR."""
    y, s = frame[label].to_numpy(), frame[score].to_numpy()
    if np.unique(y).size < 2:
        raise ValueError(f"need both classes to evaluate; got only {np.unique(y).tolist()}")
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "average_precision": float(average_precision_score(y, s)),
        "card_precision_at_k": card_precision_at_k(frame, k, label=label, score=score),
        "recall_at_fpr": recall_at_fpr(y, s, max_fpr),
    }
