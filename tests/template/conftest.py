"""Template fixtures: render this repository's current commit with Copier, list file trees."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import apply_overrides
from tests.conftest import REPO_ROOT, run

# The answers every template test gives: a new identity.
NEW = {"project_name": "Acme Risk", "slug": "acme-risk"}
# Files only the template's root has (Copier's config and answers-file template) ...
TEMPLATE_ONLY = {"copier.yml", "{{ _copier_conf.answers_file }}.jinja"}
# ... and the one only a Copier render has.
ANSWERS = ".copier-answers.yml"


def head() -> str:
    """The commit under test: renders use it, never the (possibly dirty) working tree."""
    return run(REPO_ROOT, "git", "rev-parse", "HEAD").strip()


def committed_files() -> set[str]:
    """Every file of the commit under test."""
    return set(run(REPO_ROOT, "git", "ls-tree", "-r", "--name-only", head()).splitlines())


def copier(cwd: Path, *args: str) -> str:
    """Run the Copier CLI of this environment (its tasks run with this interpreter too)."""
    return run(cwd, sys.executable, "-m", "copier", *args)


def render(dst: Path, answers: dict[str, Any]) -> Path:
    """`copier copy` of the commit under test into `dst` with `answers` (defaults for the rest)."""
    data = [f"--data={k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in answers.items()]
    copier(
        REPO_ROOT,
        "copy",
        "--quiet",
        "--trust",
        "--defaults",
        "--vcs-ref",
        head(),
        *data,
        str(REPO_ROOT),
        str(dst),
    )
    return dst


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (but .git) and its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    }


def commit_all(root: Path) -> None:
    """Make `root` a git repository with everything committed (DVC and Copier need one)."""
    if not (root / ".git").exists():
        run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c")


def set_config(root: Path, overrides: dict[str, Any]) -> None:
    """Set dotted keys in `root`'s configs/pipeline.yaml (what a user edits)."""
    path = root / "configs/pipeline.yaml"
    data = apply_overrides(yaml.safe_load(path.read_text()), overrides)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def flow_env(tmp: Path) -> dict[str, str]:
    """Environment of a lifecycle run: local stores, its own Prefect home, time to start."""
    return {
        "MLFLOW_TRACKING_URI": "",
        "PREFECT_HOME": str(tmp / "prefect-home"),
        # The ephemeral Prefect API takes longer than its default 20 s on a busy CI machine.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }


def uv() -> str:
    """The uv the parent project was installed with (PATH, else the Makefile's .tools)."""
    found = shutil.which("uv") or str(REPO_ROOT / ".tools/bin/uv")
    assert os.access(found, os.X_OK), f"no uv at {found}"
    return found
