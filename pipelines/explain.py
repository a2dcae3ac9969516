"""Explanations and slice metrics of an evaluation (the SageMaker Clarify counterpart)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score

from pipelines import schema
from pipelines.config import Evaluate
from pipelines.metrics import card_precision_at_k, card_precision_at_k_all_cards

MAX_ROWS = 50_000  # permutation importance rescored on a fixed sample: seconds, not minutes


def importances(
    model: ClassifierMixin, test: pd.DataFrame, features: list[str], cfg: Evaluate, seed: int
) -> pd.DataFrame:
    """Permutation importance of each feature: the drop in average precision when shuffled."""
    sample = (
        test.sample(min(len(test), MAX_ROWS), random_state=seed) if len(test) > MAX_ROWS else test
    )
    result = permutation_importance(
        model,
        sample[features].astype(np.float64),
        sample[schema.TX_FRAUD].to_numpy(),
        scoring="average_precision",
        n_repeats=cfg.permutation_repeats,
        random_state=seed,
        n_jobs=1,
    )
    table = pd.DataFrame(
        {
            "feature": features,
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )
    return table.sort_values("importance_mean", ascending=False).reset_index(drop=True)


def slices(
    scored: pd.DataFrame, cfg: Evaluate, threshold: float, history: str | None
) -> pd.DataFrame:
    """Metrics per slice: amount band, night/day, weekend, and customers with short history
    (by the count column `history`, the longest customer window; no such slice when None)."""
    bands = [*cfg.amount_bands, np.inf]
    labels = [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(bands)]
    named = {
        "amount_band": pd.cut(scored[schema.TX_AMOUNT], bands, labels=labels, right=False),
        "night": scored["tx_during_night"].map({0: "day", 1: "night"}),
        "weekend": scored["tx_during_weekend"].map({0: "weekday", 1: "weekend"}),
    }
    if history is not None:
        short = scored[history] <= cfg.short_history_max_tx
        named["history"] = pd.Series(np.where(short, "short", "long"), index=scored.index)
    rows = []
    for dimension, values in named.items():
        for value, part in scored.groupby(np.asarray(values, dtype=object), sort=True):
            rows.append(_slice_row(dimension, str(value), part, cfg, threshold))
    return pd.DataFrame(rows)


def _slice_row(
    dimension: str, value: str, part: pd.DataFrame, cfg: Evaluate, threshold: float
) -> dict[str, object]:
    y, s = part[schema.TX_FRAUD].to_numpy(), part["score"].to_numpy()
    both = np.unique(y).size == 2
    return {
        "slice": dimension,
        "value": value,
        "rows": len(part),
        "frauds": int(y.sum()),
        "average_precision": float(average_precision_score(y, s)) if both else np.nan,
        "card_precision_at_k": card_precision_at_k(part, cfg.top_k),
        "card_precision_at_k_all_cards": card_precision_at_k_all_cards(part, cfg.top_k),
        "recall_at_threshold": float((s[y == 1] >= threshold).mean()) if y.sum() else np.nan,
    }
