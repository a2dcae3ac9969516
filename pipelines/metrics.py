"""Fraud detection metrics: pure functions of labels and scores (no I/O, no MLflow).

Card precision@k is the fraud handbook's (`card_precision_top_k`, Le Borgne et al.): a card
on a day is its highest score and its label that day; the test days are taken in order, and
each day the cards already detected on an earlier test day (compromised cards that were
among that day's k highest) are left out before that day's k highest are taken; the
per-day precisions are averaged. `card_precision_at_k_all_cards` is the same without
leaving detected cards out: every day ranks all its cards.

Ties at the k-th score are resolved by expectation (as if tied cards were ordered at
random), so neither value depends on row order. A card counts as detected only if it is
in the top k whatever the order of the ties: its score is above the k-th, or it is tied at
the k-th and all the tied cards fit in the k. A compromised card in a tie that straddles
the k-th place adds its expected share to that day's precision but is not detected, so it
stays in the ranking of the next days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _top_k(
    y: NDArray[np.float64], s: NDArray[np.float64], k: int
) -> tuple[float, NDArray[np.bool_]]:
    """Precision@k by expectation over ties, and which items are surely in the top k."""
    if y.size <= k:
        return float(y.sum() / k), np.ones(y.size, dtype=bool)
    cutoff = np.sort(s)[::-1][k - 1]
    above = s > cutoff
    tied = s == cutoff
    slots = k - int(above.sum())  # how many of the tied items make it into the top k
    expected = y[above].sum() + slots * y[tied].mean()
    sure = above | tied if slots == int(tied.sum()) else above
    return float(expected / k), sure


def precision_at_k(labels: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Share of frauds among the `k` highest scores (over k, even when fewer items exist)."""
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    if y.size == 0:
        return 0.0
    return _top_k(y, s, k)[0]


def _cards_per_day(
    frame: pd.DataFrame, day: str, card: str, label: str, score: str
) -> pd.DataFrame:
    """One row per (day, card): the card's highest score and label that day."""
    return frame.groupby([day, card], sort=True)[[label, score]].max()


def card_precision_at_k(
    frame: pd.DataFrame,
    k: int,
    *,
    day: str = "day",
    card: str = "customer_id",
    label: str = "tx_fraud",
    score: str = "score",
) -> float:
    """The handbook's card precision@k: mean over days of precision@k on the cards not
    detected on an earlier day (see the module docstring for ties)."""
    if frame.empty:
        return 0.0
    detected: set[object] = set()
    per_day = []
    for _, cards in _cards_per_day(frame, day, card, label, score).groupby(level=0):
        ids = cards.index.get_level_values(1)
        kept = cards[~ids.isin(list(detected))]
        y = kept[label].to_numpy(dtype=float)
        precision, sure = _top_k(y, kept[score].to_numpy(dtype=float), k)
        per_day.append(precision)
        detected.update(kept.index.get_level_values(1)[sure & (y == 1)])
    return float(np.mean(per_day))


def card_precision_at_k_all_cards(
    frame: pd.DataFrame,
    k: int,
    *,
    day: str = "day",
    card: str = "customer_id",
    label: str = "tx_fraud",
    score: str = "score",
) -> float:
    """Mean over days of precision@k on all of the day's cards (none left out for having
    been detected before): each day on its own."""
    if frame.empty:
        return 0.0
    cards = _cards_per_day(frame, day, card, label, score)
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
    """ROC AUC, average precision, card precision@k (the handbook's, and over all cards)
    and recall at the given FPR."""
    y, s = frame[label].to_numpy(), frame[score].to_numpy()
    if np.unique(y).size < 2:
        raise ValueError(f"need both classes to evaluate; got only {np.unique(y).tolist()}")
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "average_precision": float(average_precision_score(y, s)),
        "card_precision_at_k": card_precision_at_k(frame, k, label=label, score=score),
        "card_precision_at_k_all_cards": card_precision_at_k_all_cards(
            frame, k, label=label, score=score
        ),
        "recall_at_fpr": recall_at_fpr(y, s, max_fpr),
    }
