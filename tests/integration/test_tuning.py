"""`make tune` on tiny data: a study over the folds that persists, resumes, nests its trials
in MLflow, prunes, and proposes its best hyper-parameters as a diff of the config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from pipelines import stages, tracking
from pipelines.__main__ import main
from pipelines.config import PipelineConfig, load_pipeline_config
from pipelines.params_file import write_params
from pipelines.search import search_space
from pipelines.tune import STATE, TuningError, tune
from tests.conftest import REPO_ROOT, TINY, tiny_config

pytestmark = pytest.mark.integration
EXPERIMENT = "fraudops-tune-test"


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny features, built once for the module (their folder holds every tiny output)."""
    root = tmp_path_factory.mktemp("tune-data")
    cfg = tiny_config(root)
    for stage in (stages.generate, stages.validate, stages.features):
        stage(cfg)
    return root


@pytest.fixture(scope="module")
def cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The module's working directory: its MLflow store (made once: that takes seconds)."""
    root = tmp_path_factory.mktemp("tune-cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield root


@pytest.fixture
def here(cwd: Path, tmp_path: Path) -> Path:
    """The test's own folder, for its study file and config copy."""
    del cwd
    return tmp_path


def _config(features: Path, here: Path, **extra: Any) -> PipelineConfig:
    settings = {
        "train.tuning.storage": str(here / "studies.db"),
        "train.tuning.n_trials": 2,
        "train.tuning.timeout_s": None,
        **extra,
    }
    return tiny_config(features, **settings)


def _study(cfg: PipelineConfig, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{cfg.train.tuning.storage}")


def test_a_study_persists_and_a_rerun_adds_to_it(features: Path, here: Path) -> None:
    cfg = _config(features, here)
    first = tune(cfg, EXPERIMENT)
    assert cfg.train.tuning.storage.exists()
    assert first.total == 2
    assert first.states == {"COMPLETE": 2}
    configured = cfg.train.estimator_params()
    trial0 = _study(cfg, first.study).trials[0]
    assert trial0.params == {k: configured[k] for k in trial0.params}, "configured first"
    assert first.configured_value == trial0.value
    assert first.best_value >= first.configured_value

    second = tune(cfg, EXPERIMENT)
    assert second.study == first.study
    assert second.total == 4
    assert second.states == {"COMPLETE": 2}
    trials = _study(cfg, first.study).trials
    assert len(trials) == 4
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4, "a resume repeats none"
    assert second.best_value == max(t.value for t in trials)


def test_params_written_back_are_not_run_again(features: Path, here: Path) -> None:
    first = tune(_config(features, here), EXPERIMENT)
    cfg = _config(features, here)
    trial1 = _study(cfg, first.study).trials[1]
    rounded = search_space(optuna.trial.FixedTrial(trial1.params), "hist_gradient_boosting")
    applied = {f"train.hist_gradient_boosting.{k}": v for k, v in rounded.items()}
    cfg = _config(features, here, **applied, **{"train.tuning.n_trials": 1})
    again = tune(cfg, EXPERIMENT)
    assert again.study == first.study, "the search space is the same: the same study"
    assert again.total == 3
    assert again.configured_value == trial1.value
    new = _study(cfg, first.study).trials[2]
    assert search_space(optuna.trial.FixedTrial(new.params), "hist_gradient_boosting") != rounded


def test_another_search_space_is_another_study(features: Path, here: Path) -> None:
    hgb = tune(_config(features, here, **{"train.tuning.n_trials": 1}), EXPERIMENT)
    cfg = _config(features, here, **{"train.tuning.n_trials": 1, "train.estimator": "xgboost"})
    xgb = tune(cfg, EXPERIMENT)
    assert hgb.study.startswith("hist_gradient_boosting-")
    assert xgb.study.startswith("xgboost-")
    assert xgb.total == 1
    assert set(optuna.get_all_study_names(f"sqlite:///{cfg.train.tuning.storage}")) == {
        hgb.study,
        xgb.study,
    }


def _runs(filter_string: str) -> Any:
    import mlflow

    tracking.configure(EXPERIMENT)
    return mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=filter_string)


def test_trials_are_mlflow_runs_nested_under_one_parent(features: Path, here: Path) -> None:
    cfg = _config(features, here, **{"train.tuning.n_trials": 3})
    outcome = tune(cfg, EXPERIMENT)
    parent = _runs(f"attributes.run_id = '{outcome.parent_run_id}'").iloc[0]
    assert parent["tags.fraudops.study"] == outcome.study
    assert parent["status"] == "FINISHED"
    assert parent["metrics.best.mean.average_precision"] == pytest.approx(outcome.best_value)
    trials = _runs(f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    assert len(trials) == 3
    assert (trials[f"tags.{STATE}"] == "COMPLETE").all()
    assert (trials["status"] == "FINISHED").all()
    assert trials["metrics.mean.average_precision"].max() == pytest.approx(outcome.best_value)
    assert trials["params.max_leaf_nodes"].notna().all()


class PruneAllButTheFirst(optuna.pruners.BasePruner):
    """Prunes every trial after trial 0 at its first report."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number > 0


def test_a_pruned_trial_stops_early_and_is_recorded(features: Path, here: Path) -> None:
    cfg = _config(features, here)
    outcome = tune(cfg, EXPERIMENT, pruner=PruneAllButTheFirst())
    assert outcome.states == {"COMPLETE": 1, "PRUNED": 1}
    pruned = _study(cfg, outcome.study).trials[1]
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert list(pruned.intermediate_values) == [0], "stopped after the first fold"
    run = _runs(
        f"tags.mlflow.parentRunId = '{outcome.parent_run_id}' and tags.`{STATE}` = 'PRUNED'"
    )
    assert len(run) == 1
    assert run.iloc[0]["status"] == "KILLED"
    assert run.iloc[0]["tags.fraudops.folds_run"] == "1"
    assert outcome.best_number == 0


class InterruptTheSecond(optuna.pruners.BasePruner):
    """Ctrl-C during trial 1's first fold (where a pruner is asked)."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.number > 0:
            raise KeyboardInterrupt
        return False


def test_an_interrupted_run_loses_only_its_running_trial(features: Path, here: Path) -> None:
    cfg = _config(features, here)
    with pytest.raises(TuningError, match=r"interrupted; .* keeps this run's 1 finished trials"):
        tune(cfg, EXPERIMENT, pruner=InterruptTheSecond())
    name = optuna.get_all_study_names(f"sqlite:///{cfg.train.tuning.storage}")[0]
    states = [t.state.name for t in _study(cfg, name).trials]
    assert states == ["COMPLETE", "FAIL"]
    again = tune(cfg, EXPERIMENT)
    assert again.study == name
    assert again.total == 4
    assert again.best_value >= _study(cfg, name).trials[0].value
    killed = _runs(f"tags.`{STATE}` = 'FAIL'")
    assert (killed["status"] == "FAILED").all()


def _project_config(features: Path, here: Path) -> Path:
    """A copy of configs/pipeline.yaml at tiny scale (edited as a person would: comments
    kept), with more leaves than the search allows, so any trial's params differ."""
    path = here / "pipeline.yaml"
    path.write_text((REPO_ROOT / "configs/pipeline.yaml").read_text())
    cfg = tiny_config(features)
    paths = {f"paths.{k}": str(v) for k, v in cfg.paths.model_dump().items()}
    write_params(
        path,
        {
            **TINY,
            **paths,
            "train.hist_gradient_boosting.max_leaf_nodes": 31,
            "train.tuning.n_trials": 1,
            "train.tuning.storage": str(here / "studies.db"),
        },
    )
    return path


def _options(config: Path) -> list[str]:
    return ["--config", str(config), "--project", str(REPO_ROOT / "configs/project.yaml")]


def _comments(text: str) -> list[str]:
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


def test_the_command_prints_a_diff_and_writes_it_only_without_dry_run(
    features: Path, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _project_config(features, here)
    before = config.read_text()
    assert main([*_options(config), "tune", "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert "-    max_leaf_nodes: 31\n" in shown
    assert "--dry-run: " in shown
    assert config.read_text() == before, "--dry-run writes nothing"

    assert main([*_options(config), "tune"]) == 0
    shown = capsys.readouterr().out
    assert "2 in the study" in shown, "the second run continued the first's study"
    assert "Review the change" in shown
    assert "make run" in shown
    after = config.read_text()
    assert after != before
    assert _comments(after) == _comments(before)
    changed = load_pipeline_config(config).train.hist_gradient_boosting
    assert changed.max_leaf_nodes <= 16
    assert changed.early_stopping is False, "what the search does not search stays"


def test_no_features_is_one_line(
    here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _project_config(tmp_path / "nothing-built", here)
    assert main([*_options(config), "tune"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: tune: no features at "), err
