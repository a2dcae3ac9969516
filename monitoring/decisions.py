"""Decisions: pure rules from a monitoring summary and thresholds to OK, WARN or RETRAIN."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipelines.config import Decisions

Verdict = Literal["OK", "WARN", "RETRAIN"]
RANK: dict[Verdict, int] = {"OK": 0, "WARN": 1, "RETRAIN": 2}


@dataclass(frozen=True)
class Quality:
    """Classification quality on the labelled rows of a window."""

    labelled_rows: int
    average_precision: float


@dataclass(frozen=True)
class Decision:
    """The verdict and every reason that led to it."""

    verdict: Verdict
    reasons: list[str] = field(default_factory=list)


def decide(
    drift_share: float,
    prediction_drift: bool,
    quality: Quality | None,
    reference_ap: float | None,
    rules: Decisions,
) -> Decision:
    """The most severe verdict any rule gives, with all reasons."""
    found: list[tuple[Verdict, str]] = []
    if drift_share >= rules.retrain_drift_share:
        found.append(
            (
                "RETRAIN",
                f"{drift_share:.0%} of features drifted (>= {rules.retrain_drift_share:.0%})",
            )
        )
    elif drift_share >= rules.warn_drift_share:
        found.append(
            ("WARN", f"{drift_share:.0%} of features drifted (>= {rules.warn_drift_share:.0%})")
        )
    if prediction_drift:
        verdict: Verdict = "RETRAIN" if rules.retrain_on_prediction_drift else "WARN"
        found.append((verdict, "the score distribution drifted"))
    if quality is not None and reference_ap is not None:
        if quality.labelled_rows < rules.min_labelled_rows:
            found.append(
                (
                    "OK",
                    f"quality not judged: {quality.labelled_rows} labelled rows "
                    f"(< {rules.min_labelled_rows})",
                )
            )
        elif reference_ap - quality.average_precision >= rules.max_ap_drop:
            found.append(
                (
                    "RETRAIN",
                    f"average precision {quality.average_precision:.3f} on "
                    f"{quality.labelled_rows} labelled rows, "
                    f"{reference_ap - quality.average_precision:.3f} below "
                    f"the reference {reference_ap:.3f}",
                )
            )
    if not any(RANK[v] for v, _ in found):
        found.append(("OK", "no drift or quality rule fired"))
    verdict = max((v for v, _ in found), key=RANK.__getitem__)
    return Decision(verdict, [reason for _, reason in found])
