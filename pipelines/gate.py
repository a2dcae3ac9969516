"""The promotion gate: pure rules from metrics and config to a decision with its reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.config import Gate

FLOORS = {
    "average_precision": "min_average_precision",
    "roc_auc": "min_roc_auc",
    "card_precision_at_k": "min_card_precision_at_k",
}
PASS, FAIL = "PASS: ", "FAIL: "  # how a recorded verdict (the `fraudops.gate` tag) begins


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger may become champion, and every reason for the answer."""

    passed: bool
    reasons: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (PASS if self.passed else FAIL) + "; ".join(self.reasons)


def verdict(summary: str | None) -> bool | None:
    """The verdict a `GateDecision.summary()` records: passed, failed, or None if it is none."""
    text = summary or ""
    if text.startswith(PASS):
        return True
    return False if text.startswith(FAIL) else None


def decide(
    challenger: dict[str, float], champion: dict[str, float] | None, cfg: Gate
) -> GateDecision:
    """Floors first, then the margin over the champion, re-scored on the same test block."""
    reasons, passed = [], True
    for metric, floor_name in FLOORS.items():
        floor = float(getattr(cfg, floor_name))
        value = challenger[metric]
        ok = value >= floor
        passed &= ok
        reasons.append(f"{metric} {value:.4f} {'>=' if ok else '<'} floor {floor:.4f}")
    if champion is None:
        reasons.append("no champion yet")
        return GateDecision(passed, reasons)
    gain = challenger["average_precision"] - champion["average_precision"]
    beats = gain > cfg.min_improvement
    passed &= beats
    reasons.append(
        f"average_precision {challenger['average_precision']:.4f} vs champion "
        f"{champion['average_precision']:.4f}: {gain:+.4f} "
        f"{'>' if beats else '<='} margin {cfg.min_improvement:+.4f}"
    )
    return GateDecision(passed, reasons)
