"""Promotion refuses unusable versions unless forced (and audited); register marks orphans.

One small MLflow store (SQLite in a temporary project) and one tiny logged model, registered
as many versions as each test needs, in the states `register` leaves them: incomplete (a
killed register), complete but never gated, failed by the gate, usable.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pipelines import gate, tracking, version_status
from pipelines.__main__ import main
from pipelines.promote import CHAMPION, RegistryError, promote, rollback
from tests.conftest import MODEL_NAME, REPO_ROOT

pytestmark = pytest.mark.integration

NAME = MODEL_NAME
PASSED = gate.GateDecision(True, ["test floors met"])
FAILED = gate.GateDecision(False, ["average_precision 0.1000 < floor 0.4000"])


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A temporary project with its own MLflow store holding one tiny logged model."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("guard"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        experiment = tracking.configure("fraudops")
        run_id = tracking.log_run(experiment, {}, {}, {}, [])
        x = pd.DataFrame({"tx_amount": [1.0, 2.0, 300.0, 400.0]})
        model = LogisticRegression().fit(x, [0, 0, 1, 1])
        yield tracking.log_model(run_id, model, x, {"threshold": 0.5}, "logistic_regression")


def _version(uri: str, *steps: dict[str, str]) -> int:
    """A new version after the given register steps (none: killed right after creating it)."""
    created = tracking.register(uri, NAME, version_status.registering())
    for tags in steps:
        tracking.set_version_tags(NAME, created.version, tags)
    return created.version


def _usable(uri: str) -> int:
    return _version(uri, version_status.completed(), version_status.gated(PASSED))


def _champion_of(uri: str) -> int:
    """A usable version made champion through the normal, unforced path."""
    version = _usable(uri)
    promote(NAME, version, "test champion", "tester")
    return version


def _audits(version: int) -> list[dict[str, object]]:
    tags = tracking.get_version(NAME, version).tags
    return [json.loads(v) for k, v in sorted(tags.items()) if k.startswith("audit.")]


def test_incomplete_version_is_refused_and_champion_unchanged(model_uri: str) -> None:
    champion = _champion_of(model_uri)
    orphan = _version(model_uri)
    with pytest.raises(RegistryError, match=f"version {orphan} is incomplete \\(no fraudops"):
        promote(NAME, orphan, "looks fine", "tester")
    assert tracking.alias_version(NAME, CHAMPION) == champion
    assert _audits(orphan) == []


def test_version_without_gate_verdict_is_refused(model_uri: str) -> None:
    champion = _champion_of(model_uri)
    ungated = _version(model_uri, version_status.completed())
    with pytest.raises(RegistryError, match=f"version {ungated} has no gate verdict"):
        promote(NAME, ungated, "looks fine", "tester")
    assert tracking.alias_version(NAME, CHAMPION) == champion


def test_version_that_failed_the_gate_is_refused(model_uri: str) -> None:
    champion = _champion_of(model_uri)
    failed = _version(model_uri, version_status.completed(), version_status.gated(FAILED))
    assert tracking.get_version(NAME, failed).tags[version_status.STATUS] == "gate-failed"
    with pytest.raises(RegistryError, match=f"version {failed} failed the gate \\(FAIL: "):
        promote(NAME, failed, "looks fine", "tester")
    assert tracking.alias_version(NAME, CHAMPION) == champion


def test_forced_promotion_is_audited_with_the_reason(model_uri: str) -> None:
    champion = _champion_of(model_uri)
    orphan = _version(model_uri)
    promote(NAME, orphan, "hotfix approved by on-call", "tester", force=True)
    assert tracking.alias_version(NAME, CHAMPION) == orphan
    record = _audits(orphan)[-1]
    assert record["forced"] is True
    assert record["why"] == "hotfix approved by on-call"
    assert "incomplete" in str(record["overrode"])
    assert _audits(champion)[-1]["to"] == orphan
    assert rollback(NAME, "back to the usable one", "tester") == champion
    assert _audits(champion)[-1]["forced"] is False


def test_rollback_refuses_an_unusable_previous_champion(model_uri: str) -> None:
    _champion_of(model_uri)
    orphan = _version(model_uri)
    promote(NAME, orphan, "forced for the test", "tester", force=True)
    usable = _champion_of(model_uri)
    with pytest.raises(RegistryError, match=f"rollback .*version {orphan} is incomplete"):
        rollback(NAME, "alert rate doubled", "tester")
    assert tracking.alias_version(NAME, CHAMPION) == usable
    assert rollback(NAME, "alert rate doubled", "tester", force=True) == orphan


def test_sweep_marks_older_incomplete_versions_orphaned_once(model_uri: str) -> None:
    usable = _usable(model_uri)
    killed = _version(model_uri)
    swept = version_status.sweep(NAME, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert killed in swept.orphaned
    assert usable not in swept.orphaned
    tags = tracking.get_version(NAME, killed).tags
    assert tags[version_status.STATUS] == "orphaned"
    assert "register step did not finish" in tags[version_status.STATUS_REASON]
    assert tracking.get_version(NAME, usable).tags[version_status.STATUS] == "usable"
    later = version_status.sweep(NAME, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert later.orphaned == ()


def test_sweep_leaves_a_version_younger_than_the_run(model_uri: str) -> None:
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    running = _version(model_uri)  # another register, still working on it
    assert running not in version_status.sweep(NAME, started).orphaned
    assert tracking.get_version(NAME, running).tags[version_status.STATUS] == "incomplete"


def _cli(*args: str) -> int:
    config = ["--config", str(REPO_ROOT / "configs/pipeline.yaml")]
    return main([*config, "--project", str(REPO_ROOT / "configs/project.yaml"), *args])


def test_cli_refuses_in_one_line_and_force_promotes(
    model_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    champion = _champion_of(model_uri)
    orphan = _version(model_uri)
    capsys.readouterr()
    assert _cli("promote", "--version", str(orphan), "--reason", "ship it") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: promote {NAME!r}: version {orphan} is incomplete"), err
    assert len(err.splitlines()) == 1
    assert tracking.alias_version(NAME, CHAMPION) == champion
    assert _cli("promote", "--version", str(orphan), "--reason", "ship it", "--force") == 0
    assert f"is now version {orphan}" in capsys.readouterr().out
    assert _audits(orphan)[-1]["forced"] is True
