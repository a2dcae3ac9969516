"""Metric functions against hand-computed cases."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.metrics import (
    card_precision_at_k,
    card_precision_at_k_all_cards,
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
    assert card_precision_at_k_all_cards(frame, k=2) == pytest.approx((0 + 0.5) / 2)
    # Nothing was detected on day 1, so the handbook's value is the same here.
    assert card_precision_at_k(frame, k=2) == pytest.approx((0 + 0.5) / 2)


def _cards(rows: list[tuple[int, str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["day", "customer_id", "tx_fraud", "score"])


def test_card_precision_drops_cards_detected_on_earlier_days() -> None:
    frame = _cards(
        [
            (1, "A", 1, 0.9),
            (1, "B", 0, 0.8),
            (1, "C", 1, 0.1),
            (2, "A", 1, 0.95),
            (2, "C", 1, 0.7),
            (2, "B", 0, 0.2),
        ]
    )
    # Day 1, k=2: top cards A (compromised) and B -> 1/2; A is detected.
    # Day 2, handbook: A is left out; the top two of C, B -> 1/2. Mean 1/2.
    assert card_precision_at_k(frame, k=2) == pytest.approx(0.5)
    # Day 2 over all cards: A and C -> 2/2. Mean 3/4.
    assert card_precision_at_k_all_cards(frame, k=2) == pytest.approx(0.75)


def test_a_card_in_a_tie_across_the_kth_place_is_not_detected() -> None:
    frame = _cards(
        [
            (1, "A", 1, 0.9),
            (1, "B", 1, 0.5),  # B and D tie for the second place: one of them makes it
            (1, "D", 0, 0.5),
            (2, "B", 1, 0.9),
            (2, "A", 1, 0.8),
            (2, "E", 0, 0.1),
        ]
    )
    # Day 1, k=2: A plus half a fraud -> 0.75; only A is surely in the top 2.
    # Day 2 among B and E (A left out; B stays, not detected): 1/2 (0 had B been left out).
    assert card_precision_at_k(frame, k=2) == pytest.approx((0.75 + 0.5) / 2)
    shuffled = frame.sample(frac=1.0, random_state=3)
    assert card_precision_at_k(shuffled, k=2) == card_precision_at_k(frame, k=2)


def test_a_tie_that_fits_in_the_top_k_is_detected() -> None:
    frame = _cards(
        [
            (1, "A", 1, 0.9),
            (1, "B", 1, 0.5),  # B and C tie for places 2 and 3: both are in the top 3
            (1, "C", 0, 0.5),
            (1, "D", 1, 0.1),
            (2, "A", 1, 0.9),
            (2, "B", 1, 0.8),
            (2, "D", 1, 0.7),
            (2, "E", 0, 0.6),
        ]
    )
    # Day 1: 2/3, A and B detected. Day 2, k=3 among D and E: 1/3.
    assert card_precision_at_k(frame, k=3) == pytest.approx((2 / 3 + 1 / 3) / 2)


def test_recall_and_threshold_at_fpr() -> None:
    labels = [0] * 100 + [1] * 4
    scores = [i / 1000 for i in range(100)] + [0.2, 0.0995, 0.05, 0.01]
    # One false positive allowed (1 % of 100): the threshold 0.099 flags one negative.
    assert recall_at_fpr(labels, scores, 0.01) == 0.5
    threshold = threshold_at_fpr(labels, scores, 0.01)
    flagged_negatives = sum(s >= threshold for s in scores[:100])
    assert flagged_negatives <= 1


def test_classification_metrics_report_both_card_precisions() -> None:
    frame = _cards([(1, "A", 1, 0.9), (1, "B", 0, 0.8), (2, "A", 1, 0.9), (2, "B", 0, 0.8)])
    m = classification_metrics(frame, 1, 0.5)
    assert m["card_precision_at_k"] == pytest.approx(0.5)  # day 2: A left out, B is not fraud
    assert m["card_precision_at_k_all_cards"] == pytest.approx(1.0)


def test_classification_metrics_needs_both_classes() -> None:
    frame = pd.DataFrame(
        {"day": [1, 1], "customer_id": [1, 2], "tx_fraud": [0, 0], "score": [0.1, 0.2]}
    )
    with pytest.raises(ValueError, match="both classes"):
        classification_metrics(frame, 100, 0.01)
