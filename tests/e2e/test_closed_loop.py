"""The closed loop on small data, as `make simulate` runs it: a new fraud pattern in
production -> quality drops once labels arrive -> RETRAIN -> retraining on the labelled
production period -> gate -> new champion, picked up by the scoring service.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pipelines import tracking
from tests.conftest import MODEL_NAME, copy_project, run
from tests.unit.monitoring.test_alerts import Receiver

pytestmark = pytest.mark.e2e

WORLD: dict[str, Any] = {
    "generate.n_customers": 600,
    "generate.n_terminals": 1200,
    "generate.n_days": 45,
    "generate.fraud.compromised_terminals_per_day": 1,
    "generate.fraud.compromised_customers_per_day": 1,
    "train.start_date": "2018-04-25",
    "train.folds": 2,
    "train.hist_gradient_boosting.max_iter": 150,
    "evaluate.permutation_repeats": 1,
    "gate.min_card_precision_at_k": 0.0,
    "gate.min_roc_auc": 0.7,
    "gate.min_average_precision": 0.4,
}


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], Receiver]:
    root = copy_project(tmp_path_factory.mktemp("loop"), WORLD)
    hook = Receiver(failures=1)  # the first alert is retried
    env = {"FRAUDOPS_ALERT_WEBHOOK_URL": hook.url, "MLFLOW_TRACKING_URI": ""}
    out = run(
        root,
        "python",
        "-m",
        "monitoring",
        "simulate",
        "--days",
        "28",
        "--timeline",
        "timeline.json",
        env=env,
    )
    assert "no champion yet: running the lifecycle first" in out
    return root, json.loads((root / "timeline.json").read_text()), hook


def test_drift_retrain_gate_champion(loop: tuple[Path, list[dict[str, Any]], Receiver]) -> None:
    _, timeline, _ = loop
    assert [w["decision"] for w in timeline[:3]] == ["RETRAIN"] * 3
    outcomes = [(w["retrain"] or {}).get("outcome") for w in timeline]
    # Too little labelled production data for the first two windows; the third retrains.
    assert outcomes[:3] == ["deferred", "deferred", "retrained"], outcomes
    retrained = timeline[2]["retrain"]
    assert retrained["version"] == 2
    assert retrained["promoted"]
    assert retrained["champion"] == 2
    # The gate compared both on the same drifted test block: the new champion is better.
    new_ap = retrained["metrics"]["average_precision"]
    old_ap = retrained["champion_metrics_before"]["average_precision"]
    assert new_ap > old_ap + 0.1, (new_ap, old_ap)
    # The service followed the alias: everything after the switch is scored by version 2.
    assert timeline[2]["serving_version"] == 2
    # The last window was scored by version 1 before the switch: no second retrain.
    assert outcomes[3] == "skipped"


def test_monitoring_runs_in_mlflow(
    loop: tuple[Path, list[dict[str, Any]], Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, timeline, hook = loop
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.local_uri())
    for window in timeline:
        assert window["mlflow_run_id"], window
        folder = Path(window["folder"])
        assert (folder / "drift.html").stat().st_size > 10_000
        assert json.loads((folder / "summary.json").read_text())["decision"] == window["decision"]
    labelled = [w for w in timeline if (w["quality"] or {}).get("labelled_rows")]
    assert labelled, "labels arrived for some windows"
    assert all(w["quality"]["labelled_rows"] <= w["rows"] for w in labelled)
    assert tracking.alias_version(MODEL_NAME, "champion") == 2
    assert os.path.exists(root / "data/feedback/production.parquet")
    # Every non-OK window was alerted; the receiver failed once and the retry delivered.
    assert [a["decision"] for a in hook.received] == [
        w["decision"] for w in timeline if w["decision"] != "OK"
    ]


def test_the_loop_leaves_the_committed_config_alone(
    loop: tuple[Path, list[dict[str, Any]], Receiver],
) -> None:
    """Retraining's overrides belong to its run: configs/ is as committed afterwards, and
    the template layer (`make init`) still works on the clone."""
    root, timeline, _ = loop
    assert any("retrained" in json.dumps(w) for w in timeline), "the loop must have retrained"
    assert run(root, "git", "status", "--porcelain", "configs/").strip() == ""
    run(root, "python", "template/apply.py", "--name", "Acme Risk", "--slug", "acme-risk")
    assert "acme-risk" in (root / "configs/project.yaml").read_text()
