"""The promotion gate's rules."""

from __future__ import annotations

from pipelines.config import Gate
from pipelines.gate import decide, verdict

GATE = Gate(
    approval="auto",
    min_average_precision=0.5,
    min_roc_auc=0.85,
    min_card_precision_at_k=0.2,
    min_improvement=0.01,
)
GOOD = {"average_precision": 0.7, "roc_auc": 0.9, "card_precision_at_k": 0.3}


def test_first_model_needs_only_the_floors() -> None:
    decision = decide(GOOD, None, GATE)
    assert decision.passed
    assert "no champion yet" in decision.summary()


def test_each_floor_blocks() -> None:
    for metric in GOOD:
        weak = {**GOOD, metric: 0.01}
        decision = decide(weak, None, GATE)
        assert not decision.passed
        assert f"{metric} 0.0100 < floor" in decision.summary()


def test_must_beat_the_champion_by_the_margin() -> None:
    assert decide(GOOD, {**GOOD, "average_precision": 0.68}, GATE).passed
    close = decide(GOOD, {**GOOD, "average_precision": 0.695}, GATE)
    assert not close.passed
    assert "<= margin" in close.summary()


def test_floors_apply_even_when_beating_a_weak_champion() -> None:
    weak = {**GOOD, "roc_auc": 0.6}
    assert not decide(weak, {**GOOD, "average_precision": 0.1}, GATE).passed


def test_the_recorded_summary_gives_the_verdict_back() -> None:
    assert verdict(decide(GOOD, None, GATE).summary()) is True
    assert verdict(decide({**GOOD, "roc_auc": 0.1}, None, GATE).summary()) is False
    assert verdict(None) is None
    assert verdict("looks good to me") is None
