"""Flow parameters: overrides are validated before they are written into the params file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.errors import ConfigError
from tests.conftest import REPO_ROOT


def test_a_bad_override_leaves_the_params_file_as_it_was(tmp_path: Path) -> None:
    from pipelines.flows.training import _load

    config = tmp_path / "pipeline.yaml"
    shutil.copy(REPO_ROOT / "configs/pipeline.yaml", config)
    before = config.read_text()
    with pytest.raises(ConfigError, match=r"generate\.n_days"):
        _load(str(config), {"generate.n_days": -1}, str(REPO_ROOT / "configs/project.yaml"))
    assert config.read_text() == before


def test_a_good_override_is_written_keeping_comments(tmp_path: Path) -> None:
    from pipelines.flows.training import _load

    config = tmp_path / "pipeline.yaml"
    shutil.copy(REPO_ROOT / "configs/pipeline.yaml", config)
    cfg, _ = _load(
        str(config), {"train.estimator": "random_forest"}, str(REPO_ROOT / "configs/project.yaml")
    )
    assert cfg.train.estimator == "random_forest"
    text = config.read_text()
    assert "estimator: random_forest" in text
    assert "# TEMPLATE:" in text
