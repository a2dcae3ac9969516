"""The config writer: values change, comments and layout stay; a proposal is a diff."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pipelines.config import load_pipeline_config
from pipelines.params_file import set_values, unified_diff, write_params
from pipelines.proposal import propose
from tests.conftest import REPO_ROOT

TEXT = """# top comment
train:
  estimator: hist_gradient_boosting   # which one
  hist_gradient_boosting:           # chosen by a comparison
    max_iter: 300
    learning_rate: 0.02             # small steps
  threads: null
  windows: [1, 7, 30]
"""


def _comments(text: str) -> list[str]:
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


def test_only_the_set_values_change() -> None:
    after = set_values(TEXT, {"train.hist_gradient_boosting.learning_rate": 0.0412})
    changed = [(a, b) for a, b in zip(TEXT.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == [
        (
            "    learning_rate: 0.02             # small steps",
            "    learning_rate: 0.0412           # small steps",
        )
    ]


def test_comments_nulls_and_inline_lists_survive() -> None:
    after = set_values(TEXT, {"train.windows": [1, 14], "train.hist_gradient_boosting.max_iter": 7})
    assert _comments(after) == _comments(TEXT)
    assert "  threads: null\n" in after
    assert "  windows: [1, 14]\n" in after
    assert "    max_iter: 7\n" in after


def test_the_diff_is_what_git_shows() -> None:
    after = set_values(TEXT, {"train.hist_gradient_boosting.max_iter": 120})
    diff = unified_diff(Path("configs/pipeline.yaml"), TEXT, after)
    assert diff.startswith("--- a/configs/pipeline.yaml\n+++ b/configs/pipeline.yaml\n")
    assert "-    max_iter: 300\n+    max_iter: 120\n" in diff
    assert unified_diff(Path("x.yaml"), TEXT, TEXT) == ""


def test_write_params_edits_the_file_in_place(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(TEXT)
    write_params(path, {"train.estimator": "random_forest"})
    assert re.search(r"(?m)^  estimator: random_forest +# which one$", path.read_text())


def _copy(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    shutil.copy(REPO_ROOT / "configs/pipeline.yaml", path)
    return path


def test_a_proposal_writes_the_projects_config_keeping_its_comments(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    before = path.read_text()
    best = {"max_iter": 123, "learning_rate": 0.0456, "max_leaf_nodes": 9}
    proposal = propose(path, "hist_gradient_boosting", best, write=True)
    assert proposal.written
    assert "+    max_iter: 123\n" in proposal.diff
    assert "+    learning_rate: 0.0456\n" in proposal.diff
    assert proposal.diff.count("\n+    ") == 3, proposal.diff  # only the changed values
    assert _comments(path.read_text()) == _comments(before)
    params = load_pipeline_config(path).train.hist_gradient_boosting.model_dump()
    assert {k: params[k] for k in best} == best


def test_a_dry_run_proposal_writes_nothing(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    before = path.read_bytes()
    proposal = propose(path, "random_forest", {"n_estimators": 77}, write=False)
    assert not proposal.written
    assert "+    n_estimators: 77\n" in proposal.diff
    assert path.read_bytes() == before


def test_the_configured_values_are_no_change(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    configured = load_pipeline_config(path).train.xgboost.model_dump()
    proposal = propose(path, "xgboost", configured, write=True)
    assert proposal.diff == ""
    assert not proposal.written
