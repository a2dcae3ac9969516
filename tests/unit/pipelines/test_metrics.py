"""Metric functions against hand-computed cases."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.metrics import (
    card_precision_at_k,
    classification_metrics,
    precision_at_k,
    recall_at_fpr,
    threshold_at_fpr,
)


def test_precision_at_k_without_ties() -> None:
    assert precision_at_k([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], k=2) == 0.5
    assert precision_at_k([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], k=3) == pytest.approx(2 / 3)


def test_precision_at_k_splits_ties_at_the_cutoff_by_expectation() -> None:
    # Top-2 of scores [0.9, 0.5, 0.5, 0.5]: 0.9 (fraud) plus one of three tied items, of
    # which one is fraud: expected frauds = 1 + 1 * (1/3), precision = (4/3) / 2.
    assert precision_at_k([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.5], k=2) == pytest.approx(2 / 3)
    # The order of the tied rows does not matter.
    assert precision_at_k([1, 0, 0, 1], [0.9, 0.5, 0.5, 0.5], k=2) == pytest.approx(2 / 3)


def test_precision_at_k_divides_by_k_when_fewer_items() -> None:
    assert precision_at_k([1, 0], [0.3, 0.2], k=4) == 0.25


def test_card_precision_uses_each_cards_max_per_day_and_averages_days() -> None:
    frame = pd.DataFrame(
        {
            "day": [1, 1, 1, 1, 2, 2],
            "customer_id": [10, 10, 11, 12, 10, 11],
            "tx_fraud": [0, 1, 0, 0, 0, 1],
            "score": [0.2, 0.1, 0.9, 0.5, 0.8, 0.3],
        }
    )
    # Day 1 cards: 10 (max score .2, compromised), 11 (.9, no), 12 (.5, no): top-2 = 11, 12 -> 0.
    # Day 2 cards: 10 (.8, no), 11 (.3, yes): top-2 = both -> 1/2.
    assert card_precision_at_k(frame, k=2) == pytest.approx((0 + 0.5) / 2)


def test_recall_and_threshold_at_fpr() -> None:
    labels = [0] * 100 + [1] * 4
    scores = [i / 1000 for i in range(100)] + [0.2, 0.0995, 0.05, 0.01]
    # One false positive allowed (1 % of 100): the threshold 0.099 flags one negative.
    assert recall_at_fpr(labels, scores, 0.01) == 0.5
    threshold = threshold_at_fpr(labels, scores, 0.01)
    flagged_negatives = sum(s >= threshold for s in scores[:100])
    assert flagged_negatives <= 1


def test_classification_metrics_needs_both_classes() -> None:
    frame = pd.DataFrame(
        {"day": [1, 1], "customer_id": [1, 2], "tx_fraud": [0, 0], "score": [0.1, 0.2]}
    )
    with pytest.raises(ValueError, match="both classes"):
        classification_metrics(frame, 100, 0.01)
