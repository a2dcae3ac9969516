"""The CLI: subcommands are the DVC stages; expected failures are one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.__main__ import main
from pipelines.config import apply_overrides
from pipelines.errors import ERROR_FILE_ENV
from pipelines.versioning import StageFailedError, reproduce
from tests.conftest import REPO_ROOT, TINY, one_line_failure


def _config(tmp_path: Path, **changes: object) -> Path:
    data = apply_overrides(
        yaml.safe_load((REPO_ROOT / "configs/pipeline.yaml").read_text()), {**TINY, **changes}
    )
    data["paths"] = {
        k: str(tmp_path / (k if k == "metrics" else f"{k}.parquet")) for k in data["paths"]
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_stages_run_in_order(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    for stage in ("generate", "validate", "features"):
        assert main(["--config", config, stage]) == 0
    assert (tmp_path / "features.parquet").exists()
    assert (tmp_path / "metrics" / "validate.json").exists()


def test_production_period_with_named_drift(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    out = tmp_path / "prod.parquet"
    assert (
        main(
            [
                "--config",
                config,
                "generate",
                "--period",
                "production",
                "--drift",
                "amount_inflation",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "generate.n_days=-1", "generate"], "--set generate.n_days=-1: Input should be"),
        (["--set", "generate.colour=red", "generate"], "unknown key 'colour'"),
        (["--set", "production.drift=meteor", "generate"], "--set production.drift=meteor: Input"),
        (["--set", "train.start_date=%Y", "generate"], "--set train.start_date=%Y: Input should"),
        (["--set", "train.folds=[1", "generate"], "--set train.folds=[1: Input should be"),
    ],
)
def test_config_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["--config", str(_config(tmp_path)), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert message in err
    assert "\n" not in err


def test_truncated_parquet_is_one_line_without_traceback(tmp_path: Path) -> None:
    config = _config(tmp_path)
    raw = tmp_path / "raw.parquet"
    subprocess.run(
        [sys.executable, "-m", "pipelines", "--config", str(config), "generate"],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
    )
    raw.write_bytes(raw.read_bytes()[:100])
    last = one_line_failure(
        REPO_ROOT, sys.executable, "-m", "pipelines", "--config", str(config), "validate"
    )
    assert last.startswith(f"error: {raw}: cannot read")
    assert not (tmp_path / "clean.parquet").exists()


FAILING_STAGE = """
import sys
from pipelines.cli import exit_code
from pipelines.errors import DataContractError

def fail() -> None:
    raise DataContractError("train: the protocol needs 42 days; the data has 30")

sys.exit(exit_code(fail))
"""


def test_a_failed_stage_is_its_own_line_to_the_caller_of_dvc(tmp_path: Path) -> None:
    """A stage whose command fails with one line: `versioning.reproduce` raises that line
    (`stage train failed: ...`), not DVC's chain of tracebacks, so a flow ends with it."""
    (tmp_path / "fail.py").write_text(FAILING_STAGE)
    (tmp_path / "dvc.yaml").write_text(
        f"stages:\n  train:\n    cmd: {sys.executable} fail.py\n    deps: [fail.py]\n"
        "    outs: [out.txt]\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    with pytest.raises(StageFailedError) as err:
        reproduce("train", root=tmp_path)
    assert str(err.value) == (
        "stage train failed: train: the protocol needs 42 days; the data has 30"
    )
    assert ERROR_FILE_ENV not in os.environ
