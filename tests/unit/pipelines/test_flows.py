"""A run's overrides: typed and checked before anything is written, in the params file while
the run lasts (so DVC sees them), and the file put back byte for byte when it ends."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from pipelines import params_file, versioning
from pipelines.config import DEFAULT_PIPELINE_CONFIG, load_pipeline_config
from pipelines.errors import ConfigError
from tests.conftest import REPO_ROOT


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the project's config and dvc.yaml, as the working directory."""
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO_ROOT / DEFAULT_PIPELINE_CONFIG, tmp_path / DEFAULT_PIPELINE_CONFIG)
    shutil.copy(REPO_ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path / DEFAULT_PIPELINE_CONFIG


def test_a_bad_override_is_refused_before_anything_is_written(project: Path) -> None:
    from pipelines.flows.training import _run_scope

    before = project.read_bytes()
    with (
        pytest.raises(ConfigError, match=r"^--set generate\.n_days=-1: "),
        _run_scope(str(DEFAULT_PIPELINE_CONFIG), {"generate.n_days": "-1"}),
    ):
        pytest.fail("the run must not start")
    assert project.read_bytes() == before
    assert not versioning.PARAMS_BACKUP.exists() or not any(versioning.PARAMS_BACKUP.iterdir())


def test_overrides_last_as_long_as_the_run(project: Path) -> None:
    from pipelines.flows.training import _run_scope

    before = project.read_bytes()
    overrides = {"train.start_date": "2018-08-15", "features.customer_windows_days": "[1, 14]"}
    with _run_scope(str(DEFAULT_PIPELINE_CONFIG), overrides):
        cfg = load_pipeline_config(DEFAULT_PIPELINE_CONFIG)  # what a DVC stage reads
        assert cfg.train.start_date == dt.date(2018, 8, 15)
        assert cfg.features.customer_windows_days == [1, 14]
        during = project.read_text().splitlines()
        changed = [line for line in during if line not in before.decode().splitlines()]
        assert [line.split(":")[0].strip() for line in changed] == [
            "customer_windows_days",
            "start_date",
        ]  # every other line (comments included) as it was
        assert len(during) == len(before.decode().splitlines())
    assert project.read_bytes() == before


def test_a_failed_run_puts_the_file_back(project: Path) -> None:
    from pipelines.flows.training import _run_scope

    before = project.read_bytes()
    with (
        pytest.raises(RuntimeError, match="stage failed"),
        _run_scope(str(DEFAULT_PIPELINE_CONFIG), {"train.estimator": "random_forest"}),
    ):
        raise RuntimeError("stage failed")
    assert project.read_bytes() == before


def test_the_next_run_repairs_what_a_killed_run_left(project: Path) -> None:
    """SIGKILL skips every `finally`: the backup it left is put back by the next run."""
    before = project.read_bytes()
    backup = versioning.PARAMS_BACKUP
    backup.mkdir(parents=True)
    (backup / project.name).write_bytes(before)
    params_file.write_params(project, {"train.estimator": "random_forest"})
    (backup / f"{project.name}.written").write_bytes(project.read_bytes())
    (backup / f"{project.name}.pid").write_text("999999999")  # no such process
    versioning.recover_params(project)
    assert project.read_bytes() == before
    assert not any(backup.iterdir())


def test_a_file_edited_after_a_killed_run_is_left_alone(project: Path) -> None:
    backup = versioning.PARAMS_BACKUP
    backup.mkdir(parents=True)
    (backup / project.name).write_bytes(project.read_bytes())
    (backup / f"{project.name}.written").write_bytes(b"what the killed run wrote")
    (backup / f"{project.name}.pid").write_text("999999999")
    project.write_text(project.read_text() + "\n# the user's own edit\n")
    edited = project.read_bytes()
    versioning.recover_params(project)
    assert project.read_bytes() == edited
    kept = backup / f"{project.name}.before-interrupted-run"
    assert kept.exists(), "the file as it was before the killed run is kept for the user"
