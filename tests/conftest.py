"""Shared fixtures: a tiny, fast configuration whose outputs live in a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.config import (
    PipelineConfig,
    apply_overrides,
    load_pipeline_config,
    load_project_config,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
# The project's registered model: tests follow configs/project.yaml, so a renamed project
# (`make init`, Copier) passes its own tests.
MODEL_NAME = load_project_config(REPO_ROOT / "configs/project.yaml").registered_model_name

# Small enough for seconds, large enough that every fraud scenario occurs.
TINY: dict[str, Any] = {
    "generate.n_customers": 120,
    "generate.n_terminals": 240,
    "generate.n_days": 40,
    "generate.fraud.compromised_terminals_per_day": 1,
    "generate.fraud.compromised_customers_per_day": 1,
    "production.n_days": 10,
    "train.start_date": "2018-04-16",
    "train.folds": 2,
    "train.hist_gradient_boosting.max_iter": 50,
    "evaluate.permutation_repeats": 1,
}


def tiny_config(tmp_path: Path, **extra: Any) -> PipelineConfig:
    """The project's pipeline config at tiny scale, writing under `tmp_path`."""
    paths = {
        "paths.raw": str(tmp_path / "raw.parquet"),
        "paths.production": str(tmp_path / "production.parquet"),
        "paths.clean": str(tmp_path / "clean.parquet"),
        "paths.quarantine": str(tmp_path / "quarantine.parquet"),
        "paths.features": str(tmp_path / "features.parquet"),
        "paths.model": str(tmp_path / "model.joblib"),
        "paths.model_params": str(tmp_path / "params.json"),
        "paths.reports": str(tmp_path / "reports"),
        "paths.metrics": str(tmp_path / "metrics"),
    }
    return load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml", {**TINY, **paths, **extra})


@pytest.fixture
def tiny(tmp_path: Path) -> PipelineConfig:
    """A tiny pipeline config writing under a temporary folder."""
    return tiny_config(tmp_path)


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a command with the project's interpreter first on PATH; fail with its output."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    full_env = {**os.environ, "PATH": path, **(env or {})}
    done = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def one_line_failure(cwd: Path, *args: str, code: int = 1) -> str:
    """Run a command that must fail with `code` and no traceback; return its last line."""
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == code, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


def copy_project(root: Path, overrides: dict[str, Any]) -> Path:
    """A fresh copy of the committed project (no data, no lock) with config overrides."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    skip = ("data/", "metrics/", "models/", "reports/", "docs/", "benchmarks/")
    for name in files.splitlines():
        src = REPO_ROOT / name
        keep = name.endswith(".gitkeep") or not name.startswith(skip)
        if src.is_file() and keep and name != "dvc.lock":
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
    config = root / "configs/pipeline.yaml"
    data = apply_overrides(yaml.safe_load(config.read_text()), overrides)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init")
    return root


def set_config(root: Path, overrides: dict[str, Any]) -> None:
    """Set dotted keys in `root`'s configs/pipeline.yaml as a user would: comments kept."""
    from pipelines.params_file import write_params

    path = root / "configs/pipeline.yaml"
    apply_overrides(yaml.safe_load(path.read_text()), overrides)  # unknown keys fail here
    write_params(path, overrides)


def flow_env(tmp: Path) -> dict[str, str]:
    """Environment of a lifecycle run: the local stores. Nothing for Prefect: the command
    itself gives it the project's own home and a start-up limit a busy machine needs."""
    del tmp
    return {"MLFLOW_TRACKING_URI": ""}


# Tiny data has few cards a day, so card precision@100 is small by construction.
TINY_FLOORS: dict[str, Any] = {
    "gate.min_card_precision_at_k": 0.0,
    "gate.min_roc_auc": 0.7,
    "gate.min_average_precision": 0.4,
}


@pytest.fixture(scope="session")
def registered_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project after `dvc repro` and `register`: version 1 is champion."""
    root = copy_project(tmp_path_factory.mktemp("registered"), {**TINY, **TINY_FLOORS})
    run(root, sys.executable, "-m", "dvc", "repro", env={"MLFLOW_TRACKING_URI": ""})
    out = run(root, sys.executable, "-m", "pipelines", "register", env={"MLFLOW_TRACKING_URI": ""})
    assert "champion: None -> 1" in out, out
    return root
