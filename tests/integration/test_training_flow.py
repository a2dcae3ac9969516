"""`training_flow` on tiny data in a fresh project copy: the run, the registry, the gate.

The tests share one project and one MLflow store and run in file order: a good model
becomes champion, a re-run reuses it, a weak model stays challenger, then promotion,
rollback and the fault cases.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines import tracking, version_status
from pipelines.errors import FraudOpsError
from pipelines.promote import CHALLENGER, CHAMPION, RegistryError, promote, rollback
from tests.conftest import MODEL_NAME, TINY, TINY_FLOORS, copy_project

pytestmark = pytest.mark.integration

NAME = MODEL_NAME
WEAK = {
    "train.hist_gradient_boosting.max_iter": 1,
    "train.hist_gradient_boosting.max_leaf_nodes": 2,
    "train.hist_gradient_boosting.learning_rate": 0.001,
    "train.hist_gradient_boosting.max_features": 0.1,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, prefect_api: None) -> Iterator[Path]:
    root = copy_project(tmp_path_factory.mktemp("flow"), {**TINY, **TINY_FLOORS})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        yield root


@pytest.fixture(scope="module")
def first(project: Path) -> dict[str, Any]:
    from pipelines.flows.training import training_flow

    return training_flow()


def _client() -> Any:
    from mlflow import MlflowClient

    tracking.configure("fraudops")
    return MlflowClient()


def test_first_run_registers_and_promotes(first: dict[str, Any]) -> None:
    assert first["version"] == 1
    assert first["promoted"] is True
    assert tracking.alias_version(NAME, CHAMPION) == 1
    assert tracking.alias_version(NAME, CHALLENGER) == 1


def test_run_has_params_metrics_artifacts_and_lineage(first: dict[str, Any], project: Path) -> None:
    version = tracking.get_version(NAME, first["version"])
    run = _client().get_run(version.run_id)
    assert run.data.params["train.estimator"] == "hist_gradient_boosting"
    assert run.data.params["features.label_delay_days"] == "7"
    for metric in (
        "test.average_precision",
        "test.roc_auc",
        "test.card_precision_at_k",
        "test.recall_at_fpr",
        "prequential.average_precision.mean",
        "threshold",
    ):
        assert metric in run.data.metrics, metric
    tags = run.data.tags
    assert len(tags["lineage.data_version"]) == 32
    assert len(tags["lineage.git_commit"]) == 40
    lock = json.dumps(sorted(tags))
    assert "lineage.dvc_lock_md5" in lock
    artifacts = {a.path for a in _client().list_artifacts(version.run_id, "evaluate")}
    assert {
        "evaluate/curves.png",
        "evaluate/importances.csv",
        "evaluate/slices.csv",
        "evaluate/score_histogram.png",
    } <= artifacts


def test_model_carries_threshold_features_signature(first: dict[str, Any]) -> None:
    model, metadata = tracking.load_model(NAME, first["version"])
    assert 0 < metadata["threshold"] < 1
    assert metadata["features"][0] == "tx_amount"
    assert list(model.feature_names_in_) == metadata["features"]


def test_rerun_without_changes_reuses_the_version(first: dict[str, Any]) -> None:
    from pipelines.flows.training import training_flow

    again = training_flow()
    assert again["version"] == first["version"]
    assert again["reused"] is True
    assert tracking.alias_version(NAME, CHAMPION) == first["version"]


def test_weak_model_is_challenger_and_never_promoted(first: dict[str, Any]) -> None:
    from pipelines.flows.training import training_flow

    weak = training_flow(overrides=WEAK)
    assert weak["version"] == 2
    assert weak["promoted"] is False
    assert "< floor" in weak["gate"]
    assert tracking.alias_version(NAME, CHALLENGER) == 2
    assert tracking.alias_version(NAME, CHAMPION) == 1


def test_promote_and_rollback_record_an_audit_trail(first: dict[str, Any]) -> None:
    with pytest.raises(RegistryError, match="version 2 failed the gate"):
        promote(NAME, 2, "manual test promotion", "tester")
    assert tracking.alias_version(NAME, CHAMPION) == 1
    promote(NAME, 2, "manual test promotion", "tester", force=True)
    assert tracking.alias_version(NAME, CHAMPION) == 2
    assert rollback(NAME, "bad idea", "tester") == 1
    assert tracking.alias_version(NAME, CHAMPION) == 1
    audit = [
        json.loads(v)
        for k, v in tracking.get_version(NAME, 2).tags.items()
        if k.startswith("audit.")
    ]
    actions = sorted(record["action"] for record in audit)
    assert actions == ["promote", "rollback"]
    assert all(record["who"] == "tester" and record["when"] for record in audit)
    assert all("metrics_before" in record and "metrics_after" in record for record in audit)
    forced = [record["forced"] for record in audit if record["action"] == "promote"]
    assert forced == [True]
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(NAME, "again", "tester")


def test_promote_unknown_version_changes_nothing(first: dict[str, Any]) -> None:
    with pytest.raises(FraudOpsError, match="version 99"):
        promote(NAME, 99, "does not exist", "tester")
    assert tracking.alias_version(NAME, CHAMPION) == 1


def test_crash_while_logging_leaves_the_registry_and_rerun_completes(
    first: dict[str, Any], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.flows.training import training_flow

    def crash(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt("killed while logging the model")

    monkeypatch.setattr(tracking, "log_model", crash)
    overrides = {"train.hist_gradient_boosting.max_iter": 60}
    with pytest.raises(BaseException, match="killed"):
        training_flow(overrides=overrides)
    assert tracking.alias_version(NAME, CHAMPION) == 1
    assert tracking.alias_version(NAME, CHALLENGER) == 2
    monkeypatch.undo()
    done = training_flow(overrides=overrides)  # a run's overrides are that run's: name them again
    assert done["version"] == 3
    assert done["reused"] is False


def test_killed_register_leaves_an_orphan_that_the_next_run_marks(
    first: dict[str, Any], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.flows.training import training_flow

    tag = tracking.set_version_tags

    def killed(name: str, version: int, tags: dict[str, str]) -> None:
        if version_status.COMPLETE in tags:
            raise KeyboardInterrupt("killed during register")
        tag(name, version, tags)

    monkeypatch.setattr(tracking, "set_version_tags", killed)
    overrides = {"train.hist_gradient_boosting.max_iter": 70}
    with pytest.raises(BaseException, match="killed"):
        training_flow(overrides=overrides)
    orphan = tracking.list_versions(NAME)[0]
    assert version_status.COMPLETE not in orphan.tags
    with pytest.raises(RegistryError, match=f"version {orphan.version} is incomplete"):
        promote(NAME, orphan.version, "it is the newest", "tester")
    monkeypatch.undo()
    done = training_flow(overrides=overrides)
    assert done["orphaned"] == [orphan.version]
    assert done["version"] == orphan.version + 1
    status = tracking.get_version(NAME, orphan.version).tags[version_status.STATUS]
    assert status == version_status.ORPHANED


def test_mlflow_unreachable_is_a_clear_error(
    first: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.config import load_pipeline_config, load_project_config
    from pipelines.register import register

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    with pytest.raises(tracking.TrackingError, match=r"MLflow at http://127\.0\.0\.1:9"):
        register(load_pipeline_config(), load_project_config(), "tester")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    tracking.configure("fraudops")
    assert tracking.alias_version(NAME, CHAMPION) == 1
