"""What a version's tags say: only complete versions that passed the gate are usable."""

from __future__ import annotations

from pipelines import gate, version_status
from pipelines.tracking import ModelVersion
from tests.conftest import MODEL_NAME


def _version(*steps: dict[str, str]) -> ModelVersion:
    tags: dict[str, str] = version_status.registering()
    for step in steps:
        tags = {**tags, **step}
    return ModelVersion(MODEL_NAME, 5, "run", tags)


def test_each_missing_step_is_named() -> None:
    passed = version_status.gated(gate.GateDecision(True, ["ok"]))
    failed = version_status.gated(gate.GateDecision(False, ["roc_auc too low"]))
    completed = version_status.completed()
    assert version_status.problem(_version()) == (
        "version 5 is incomplete (no fraudops.complete tag: its register step did not finish)"
    )
    assert version_status.problem(_version(completed)) == (
        "version 5 has no gate verdict (no fraudops.gate tag: it was never gated)"
    )
    assert version_status.problem(_version(completed, failed)) == (
        "version 5 failed the gate (FAIL: roc_auc too low)"
    )
    assert version_status.problem(_version(completed, passed)) is None


def test_a_gate_verdict_without_completeness_is_still_incomplete() -> None:
    passed = version_status.gated(gate.GateDecision(True, ["ok"]))
    assert "incomplete" in str(version_status.problem(_version(passed)))


def test_the_status_word_follows_the_steps() -> None:
    status = version_status.STATUS
    completed = version_status.completed()
    passed = version_status.gated(gate.GateDecision(True, ["ok"]))
    failed = version_status.gated(gate.GateDecision(False, ["no"]))
    assert _version().tags[status] == "incomplete"
    assert _version(completed).tags[status] == "ungated"
    assert _version(completed, passed).tags[status] == "usable"
    assert _version(completed, failed).tags[status] == "gate-failed"
