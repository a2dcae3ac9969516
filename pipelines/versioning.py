"""The one module that talks to DVC: reproduce stages, push data, and report data versions.

The data version of a run is the DVC hash (md5) that `dvc.lock` records for the validated
transactions: the same bytes always give the same version, on any machine.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from pipelines.errors import FraudOpsError

log = logging.getLogger(__name__)


class VersioningError(FraudOpsError):
    """DVC could not reproduce, push, or report a version."""


def stage_names(root: Path = Path(".")) -> list[str]:
    """The stages of `dvc.yaml`, in file order (which is the DAG order here)."""
    data = yaml.safe_load((root / "dvc.yaml").read_text())
    return list(data.get("stages", {}))


def data_version(path: Path, root: Path = Path(".")) -> str:
    """The md5 that `dvc.lock` records for output `path` (relative to `root`)."""
    lock_file = root / "dvc.lock"
    if not lock_file.exists():
        raise VersioningError(f"{lock_file}: not found; run `dvc repro` first")
    lock = yaml.safe_load(lock_file.read_text()) or {}
    for stage in lock.get("stages", {}).values():
        for out in stage.get("outs", []):
            if Path(out["path"]) == Path(path):
                return str(out["md5"])
    raise VersioningError(f"{lock_file}: no output {path}; run `dvc repro` first")


@contextmanager
def _this_python_first() -> Iterator[None]:
    """Stage commands say `python`: make that the interpreter running this code."""
    before = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{before}"
    try:
        yield
    finally:
        os.environ["PATH"] = before


def reproduce(stage: str, root: Path = Path(".")) -> list[str]:
    """Run one stage (and nothing else) if its deps changed; return the stages that ran."""
    from dvc.repo import Repo  # heavy: imported only when a stage actually runs

    with Repo(str(root)) as repo, _this_python_first():
        ran = repo.reproduce(stage, single_item=True)
    names = [getattr(s, "addressing", str(s)) for s in ran]
    log.info("dvc: %s", f"ran {', '.join(names)}" if names else f"{stage} up to date")
    return names


def push(root: Path = Path(".")) -> int:
    """Push cached outputs to the default remote; return how many files were transferred."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return int(repo.push())


def is_clean(root: Path = Path(".")) -> bool:
    """True when every stage's outputs match `dvc.lock`."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return not repo.status()


def lineage(clean: Path, root: Path = Path(".")) -> dict[str, str]:
    """Tags that tie a model to its data and code: DVC data version, dvc.lock hash, git commit."""
    lock = root / "dvc.lock"
    return {
        "lineage.data_version": data_version(clean, root),
        "lineage.dvc_lock_md5": hashlib.md5(lock.read_bytes()).hexdigest(),
        "lineage.git_commit": _git(root, "rev-parse", "HEAD") or "unknown",
        "lineage.git_dirty": str(bool(_git(root, "status", "--porcelain", "--untracked-files=no"))),
    }


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def apply_params(config: Path, overrides: dict[str, object]) -> None:
    """Write dotted-key overrides into the params file, as `dvc exp run --set-param` does.

    DVC reads its params from the file, so an override must be in the file to be seen, be
    versioned and invalidate the right stages. Comments and order are kept.
    """
    from dvc.utils.serialize import modify_yaml

    with modify_yaml(config) as data:
        for dotted, value in overrides.items():
            node = data
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node[key]
            node[leaf] = value
