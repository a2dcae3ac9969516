"""The one module that talks to DVC: reproduce stages, push data, and report data versions.

The data version of a run is the DVC hash (md5) that `dvc.lock` records for the validated
transactions: the same bytes always give the same version, on any machine.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ERROR_FILE_ENV, FraudOpsError
from pipelines.params_file import write_params

log = logging.getLogger(__name__)
DEFAULT_PARAMS = Path("configs/pipeline.yaml")  # the file `dvc.yaml` takes its `vars` from


class VersioningError(FraudOpsError):
    """DVC could not reproduce, push, or report a version."""


class StageFailedError(VersioningError):
    """A stage's command failed: the message is its own error line (`stage train failed: ...`)."""


@contextmanager
def _error_file(path: Path) -> Iterator[Path]:
    """`path` as `FRAUDOPS_ERROR_FILE` while the block runs: a stage's command (a child of
    `dvc repro`) appends its one-line error there (pipelines/cli.py)."""
    before = os.environ.get(ERROR_FILE_ENV)
    os.environ[ERROR_FILE_ENV] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(ERROR_FILE_ENV, None)
        else:
            os.environ[ERROR_FILE_ENV] = before


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


def reproduce(
    stage: str, root: Path = Path("."), stopping: Callable[[], bool] = lambda: False
) -> list[str]:
    """Run one stage (and nothing else) if its deps changed; return the stages that ran.

    If the stage fails because the run is stopping (`stopping()`: its command was killed),
    its outputs are put back as `dvc.lock` records them, so nothing is left half-written.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo  # heavy: imported only when a stage actually runs

    with (
        Repo(str(root)) as repo,
        _this_python_first(),
        tempfile.TemporaryDirectory(prefix="fraudops-stage-") as tmp,
        _error_file(Path(tmp) / "error") as errors,
    ):
        try:
            # The stage of `root`'s dvc.yaml: DVC reads a bare name against the working directory.
            ran = repo.reproduce(f"{root / 'dvc.yaml'}:{stage}", single_item=True)
        except BaseException as exc:
            if stopping():
                _restore_outputs(repo, stage)
                raise
            if not isinstance(exc, DvcException):
                raise
            said = errors.read_text(encoding="utf-8").strip() if errors.exists() else ""
            said = said.splitlines()[-1] if said else ""
            # The stage's own one line (DVC's traceback chain adds nothing to it).
            raise StageFailedError(f"stage {stage} failed: {said or exc}") from None
    names = [getattr(s, "addressing", str(s)) for s in ran]
    log.info("dvc: %s", f"ran {', '.join(names)}" if names else f"{stage} up to date")
    return names


def _restore_outputs(repo: Any, stage: str | None = None) -> None:
    """Outputs back as `dvc.lock` records them, from the cache; DVC removes any the cache
    lacks (a fresh clone's first run), so nothing half-written is left either way."""
    from dvc.exceptions import CheckoutError

    try:
        repo.checkout(targets=[stage] if stage else None, force=True)
    except CheckoutError as exc:
        log.info("dvc: not in the cache, removed: %s", ", ".join(map(str, exc.target_infos)))
    log.info("dvc: outputs of %s are back as dvc.lock has them", stage or "every stage")


@dataclass(frozen=True)
class Snapshot:
    """What a run may change in the workspace besides cached outputs: `dvc.lock` and the
    uncached outputs (metrics), as bytes (None: the file did not exist)."""

    files: dict[Path, bytes | None]


def snapshot(root: Path = Path(".")) -> Snapshot:
    """Take the state an interrupted run is rolled back to (see `roll_back`)."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text()).get("stages", {})
    paths = [root / "dvc.lock"]
    for stage in stages.values():
        for entry in stage.get("metrics", []) + stage.get("outs", []):
            if isinstance(entry, dict):
                paths.extend(root / _resolved(name, root) for name in entry)
    return Snapshot({p: p.read_bytes() if p.is_file() else None for p in paths})


def roll_back(state: Snapshot, root: Path = Path(".")) -> None:
    """Put the pipeline back as it was at `snapshot`: `dvc.lock`, metrics, cached outputs."""
    from dvc.repo import Repo

    for path, content in state.files.items():
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(content)
    with Repo(str(root)) as repo:
        _restore_outputs(repo)


def _resolved(name: str, root: Path) -> str:
    """`${paths.metrics}/x.json` -> `metrics/x.json` (the `vars` of dvc.yaml)."""
    data = yaml.safe_load((root / DEFAULT_PARAMS).read_text())
    return re.sub(r"\$\{(\w+)\.(\w+)\}", lambda m: str(data[m.group(1)][m.group(2)]), name)


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


# A run's overrides live in the params file only while the run lasts; the file as it was is
# kept here meanwhile, so a run killed outright (SIGKILL, a power cut) is put right by the next.
PARAMS_BACKUP = Path(".fraudops/params-backup")


@contextmanager
def run_params(config: Path, overrides: dict[str, object]) -> Iterator[Callable[[], None]]:
    """Write a run's overrides into the params file for the run, and put the file back after.

    DVC reads its params from the file, so an override must be there while the run lasts to
    be seen, recorded in `dvc.lock` and invalidate exactly the stages that read it (as
    `dvc exp run --set-param` does). When the run ends, however it ends, the file is back
    byte for byte: a run's overrides never stay in the user's committed config. Yields the
    restore function (for a signal handler that cannot wait for this block to unwind).
    """
    recover_params(config)
    if not overrides:
        yield lambda: None
        return
    backup = PARAMS_BACKUP / config.name
    backup.parent.mkdir(parents=True, exist_ok=True)
    original = config.read_bytes()
    backup.write_bytes(original)
    (backup.parent / f"{config.name}.pid").write_text(str(os.getpid()))
    write_params(config, overrides)
    (backup.parent / f"{config.name}.written").write_bytes(config.read_bytes())

    def restore() -> None:
        if backup.exists():
            config.write_bytes(original)
            for suffix in ("", ".written", ".pid"):
                (backup.parent / f"{config.name}{suffix}").unlink(missing_ok=True)

    try:
        yield restore
    finally:
        restore()


def recover_params(config: Path) -> None:
    """Put back a params file that a killed run left overridden (if nobody edited it since).

    A backup whose run is still alive (this process's own outer flow) is left alone.
    """
    backup = PARAMS_BACKUP / config.name
    written = PARAMS_BACKUP / f"{config.name}.written"
    owner = PARAMS_BACKUP / f"{config.name}.pid"
    if not backup.exists() or _alive(owner):
        return
    if written.exists() and config.read_bytes() != written.read_bytes():
        kept = backup.with_name(f"{config.name}.before-interrupted-run")
        backup.replace(kept)
        log.warning(
            "%s was edited after an interrupted run overrode it; left as it is (the file as it "
            "was before that run: %s)",
            config,
            kept,
        )
    else:
        config.write_bytes(backup.read_bytes())
        log.warning("%s: put back as it was before an interrupted run", config)
    for path in (backup, written, owner):
        path.unlink(missing_ok=True)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True
