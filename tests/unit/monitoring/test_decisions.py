"""Decision rules: drift share, prediction drift and quality to OK / WARN / RETRAIN."""

from __future__ import annotations

from monitoring.decisions import Quality, decide
from pipelines.config import Decisions

RULES = Decisions(
    warn_drift_share=0.15,
    retrain_drift_share=0.4,
    retrain_on_prediction_drift=True,
    min_labelled_rows=200,
    max_ap_drop=0.15,
)


def test_nothing_fires() -> None:
    decision = decide(0.05, False, Quality(1000, 0.7), 0.72, RULES)
    assert decision.verdict == "OK"


def test_drift_share_warns_then_retrains() -> None:
    assert decide(0.2, False, None, None, RULES).verdict == "WARN"
    retrain = decide(0.5, False, None, None, RULES)
    assert retrain.verdict == "RETRAIN"
    assert "50% of features drifted" in retrain.reasons[0]


def test_prediction_drift_retrains_or_warns_by_config() -> None:
    assert decide(0.0, True, None, None, RULES).verdict == "RETRAIN"
    soft = RULES.model_copy(update={"retrain_on_prediction_drift": False})
    assert decide(0.0, True, None, None, soft).verdict == "WARN"


def test_quality_drop_retrains_only_with_enough_labels() -> None:
    few = decide(0.0, False, Quality(50, 0.3), 0.7, RULES)
    assert few.verdict == "OK"
    assert "50 labelled rows" in few.reasons[0]
    many = decide(0.0, False, Quality(5000, 0.5), 0.7, RULES)
    assert many.verdict == "RETRAIN"
    assert "0.200 below the reference" in many.reasons[0]


def test_the_most_severe_verdict_wins_and_all_reasons_stay() -> None:
    decision = decide(0.2, True, Quality(5000, 0.69), 0.7, RULES)
    assert decision.verdict == "RETRAIN"
    assert len(decision.reasons) == 2
