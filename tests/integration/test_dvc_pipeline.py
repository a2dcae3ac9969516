"""The DVC pipeline on tiny data in a fresh copy of the project: repro, cache, push, version."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import versioning
from tests.conftest import TINY, copy_project, run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the committed project at tiny scale, after one `dvc repro`."""
    root = copy_project(tmp_path_factory.mktemp("project"), TINY)
    run(root, sys.executable, "-m", "dvc", "repro")
    return root


def test_repro_writes_every_stage_output(project: Path) -> None:
    for path in (
        "data/raw/transactions.parquet",
        "data/processed/transactions.parquet",
        "data/processed/quarantine.parquet",
        "data/processed/features.parquet",
        "metrics/validate.json",
        "metrics/features.json",
        "data/online/events.parquet",
        "models/model.joblib",
        "metrics/evaluate.json",
    ):
        assert (project / path).exists(), path


def test_second_repro_is_a_no_op_and_status_is_clean(project: Path) -> None:
    out = run(project, sys.executable, "-m", "dvc", "repro")
    assert "Running stage" not in out
    assert versioning.is_clean(project)


def test_stage_order_is_the_dag(project: Path) -> None:
    assert versioning.stage_names(project) == [
        "generate",
        "validate",
        "features",
        "materialize",
        "train",
        "evaluate",
        "reference",
    ]


def test_data_version_is_the_md5_of_the_validated_data(project: Path) -> None:
    clean = Path("data/processed/transactions.parquet")
    expected = hashlib.md5((project / clean).read_bytes()).hexdigest()
    assert versioning.data_version(clean, project) == expected


def test_push_fills_the_local_remote(project: Path) -> None:
    versioning.push(project)
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    hashes = {
        o["md5"]
        for s in lock["stages"].values()
        for o in s["outs"]
        if o["path"].startswith("data/")
    }  # metrics are git-tracked, not cached
    for md5 in hashes:
        assert (project / ".dvc-remote/files/md5" / md5[:2] / md5[2:]).is_file(), md5


def test_changing_a_param_reruns_only_the_stages_that_read_it(project: Path) -> None:
    config = project / "configs/pipeline.yaml"
    data = yaml.safe_load(config.read_text())
    data["features"]["night_max_hour"] = 5
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    out = run(project, sys.executable, "-m", "dvc", "repro")
    assert "Running stage 'features'" in out
    assert "Running stage 'generate'" not in out
    assert "Running stage 'validate'" not in out
