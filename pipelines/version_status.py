"""What a registered version's tags say about it: complete, gated, usable, or orphaned.

`register` writes a version in steps: the version (tagged `fraudops.status=incomplete`), then
`fraudops.complete`, then the gate's verdict in `fraudops.gate` ("PASS: ..." or "FAIL: ...").
Only a complete version with a passing verdict is usable by `promote` and `rollback`; anything
else needs `--force` and a reason. `fraudops.status` says the same in one word, so the MLflow
UI's tag column shows which versions are usable, and `fraudops.status_reason` says why.

Orphans (versions whose register step was killed) are marked, not deleted. Deleting would
drop the evidence (the run, its lineage, any audit record naming the version), would remove
any alias an orphan holds (a forced champion: the service would lose its model) and leaves a
gap in the version numbers all the same; a marked orphan costs one row and says what happened.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipelines import gate, tracking

COMPLETE = "fraudops.complete"
GATE = "fraudops.gate"
STATUS = "fraudops.status"
STATUS_REASON = "fraudops.status_reason"

INCOMPLETE = "incomplete"  # being registered now, or killed before it was complete
ORPHANED = "orphaned"  # incomplete, and a later register found it so: never usable
UNGATED = "ungated"  # complete, the gate has not decided yet
FAILED = "gate-failed"
USABLE = "usable"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def problem(version: tracking.ModelVersion) -> str | None:
    """Why `version` must not be promoted, as one phrase naming it; None if it is usable."""
    tags, number = version.tags, version.version
    if tags.get(COMPLETE) != "true":
        why = f"no {COMPLETE} tag: its register step did not finish"
        return f"version {number} is incomplete ({why})"
    passed = gate.verdict(tags.get(GATE))
    if passed is None:
        return f"version {number} has no gate verdict (no {GATE} tag: it was never gated)"
    return None if passed else f"version {number} failed the gate ({tags[GATE]})"


def registering() -> dict[str, str]:
    """The tags a version is created with: incomplete until register tags it complete."""
    return {STATUS: INCOMPLETE, STATUS_REASON: f"{_now()}: register started"}


def completed() -> dict[str, str]:
    """The tags register writes last: complete (first, it is the fact), waiting for the gate."""
    return {COMPLETE: "true", STATUS: UNGATED, STATUS_REASON: f"{_now()}: registered, not gated"}


def gated(decision: gate.GateDecision) -> dict[str, str]:
    """The tags recording the gate's verdict: the summary, usable or gate-failed."""
    word = USABLE if decision.passed else FAILED
    return {GATE: decision.summary(), STATUS: word, STATUS_REASON: f"{_now()}: gate"}


def _expected(version: tracking.ModelVersion, before_ms: int) -> str:
    tags = version.tags
    if tags.get(COMPLETE) != "true":
        old = version.created_ms < before_ms or tags.get(STATUS) == ORPHANED
        return ORPHANED if old else INCOMPLETE
    passed = gate.verdict(tags.get(GATE))
    return UNGATED if passed is None else (USABLE if passed else FAILED)


@dataclass(frozen=True)
class Sweep:
    """What a sweep of the registry changed: versions newly marked orphaned, statuses fixed."""

    orphaned: tuple[int, ...]
    corrected: tuple[int, ...]


def sweep(name: str, before: dt.datetime) -> Sweep:
    """Mark versions created before `before` that never completed as orphaned; fix statuses.

    Run at the start of register, before it creates anything: an incomplete version older
    than the run is left by a register that was killed (one register at a time per model; a
    concurrent one that started earlier would have its version marked). Versions from before
    status tags existed get theirs, so the registry says which versions are usable.
    """
    before_ms = int(before.timestamp() * 1000)
    orphaned: list[int] = []
    corrected: list[int] = []
    for version in tracking.list_versions(name):
        wanted = _expected(version, before_ms)
        if version.tags.get(STATUS) == wanted:
            continue
        why = "its register step did not finish" if wanted == ORPHANED else "from its tags"
        tags = {STATUS: wanted, STATUS_REASON: f"{_now()}: {why} (found by register)"}
        tracking.set_version_tags(name, version.version, tags)
        (orphaned if wanted == ORPHANED else corrected).append(version.version)
    return Sweep(tuple(sorted(orphaned)), tuple(sorted(corrected)))
