"""Section `first-run`: a new user's first hour, from `git clone` to a registered champion.

Each trial clones the committed HEAD into a temporary folder and times `make install` and
`make run` apart, with the environment a user's shell has (no virtualenv, uv or make
variables of the benchmark's own run, no PYTHONDONTWRITEBYTECODE). Quiet: the user's HOME,
so uv's and pip's caches are warm; the target is install + run under two minutes, flagged
when other processes used the CPU meanwhile. Loaded (not with `--quick`): an empty HOME (no
Prefect, MLflow or DVC state in it) while busy loops, one per usable core, occupy the CPU;
it must succeed, its time is reported. The download caches stay the user's in both
(UV_CACHE_DIR, PIP_CACHE_DIR): an empty uv cache would fetch the whole locked environment,
some hundreds of MB, from PyPI on every run. Temporary folders and busy loops never outlive
the section.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from benchmarks.context import Context
from benchmarks.measure import CONTENTION_SHARE, REPO_ROOT
from benchmarks.report import SectionResult, Target, now_utc, seconds, table, targets_table
from benchmarks.worker import _machine_busy_s

TARGET_S = 120.0
BUSY_LOOP = "while :; do :; done"
# The variables of the benchmark's own run that a user's fresh shell does not have: `uv run`
# sets UV (the Makefile would take that uv and skip its bootstrap) and VIRTUAL_ENV.
NOT_INHERITED = ("UV", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
NOT_INHERITED_PREFIXES = ("UV_RUN_", "PREFECT_", "MLFLOW_", "DVC_", "XDG_")


@dataclass(frozen=True)
class Step:
    """A command of the first run, timed alone, with a bound."""

    name: str
    command: tuple[str, ...]
    timeout_s: float


STEPS = (
    Step("make install", ("make", "install"), 900.0),
    Step("make run", ("make", "run"), 1800.0),
)


@dataclass(frozen=True)
class Timing:
    """One step's wall time and outcome (the end of its output when it failed)."""

    step: str
    wall_s: float
    ok: bool
    tail: str = ""


@dataclass(frozen=True)
class Trial:
    """A fresh clone's steps, in order, up to the first that failed."""

    label: str
    planned: tuple[str, ...]
    clone_s: float
    timings: tuple[Timing, ...]
    busy_loops: int
    other_cpu_s: float  # CPU other processes used meanwhile (the busy loops included)

    @property
    def ok(self) -> bool:
        """Whether every step ran and succeeded."""
        return len(self.timings) == len(self.planned) and all(t.ok for t in self.timings)

    @property
    def total_s(self) -> float:
        """Wall seconds of the steps (the clone apart)."""
        return sum(t.wall_s for t in self.timings)

    def wall(self, step: str) -> float | None:
        """The wall seconds of `step`, or None if it did not run."""
        return next((t.wall_s for t in self.timings if t.step == step), None)


def user_env(home: Path | None) -> dict[str, str]:
    """A user's shell environment: ours without the run's own variables; `home` if given."""
    venv_bin = str(Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in NOT_INHERITED and not k.startswith(NOT_INHERITED_PREFIXES)
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    if home is not None:
        user_home = Path.home()
        env["UV_CACHE_DIR"] = os.environ.get("UV_CACHE_DIR", str(user_home / ".cache/uv"))
        env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(user_home / ".cache/pip"))
        env["HOME"] = str(home)
    return env


@contextmanager
def busy_loops(n: int, bound_s: float) -> Iterator[None]:
    """`n` shell busy loops, each bounded by `timeout`, killed (process group) on exit."""
    procs = [
        subprocess.Popen(
            ["timeout", str(int(bound_s)), "sh", "-c", BUSY_LOOP], start_new_session=True
        )
        for _ in range(n)
    ]
    try:
        yield
    finally:
        for proc in procs:
            with suppress(ProcessLookupError):  # ended by its `timeout` already
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_step(step: Step, cwd: Path, env: dict[str, str]) -> Timing:
    """Run `step` in `cwd` in its own process group, timed to its exit; then the group is
    killed (nothing it left behind outlives it, nor holds up the timing by holding a pipe).
    The output goes to a file, kept for the end of a failure."""
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            step.command, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True
        )
        try:
            code: int | None = proc.wait(timeout=step.timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            wall = time.perf_counter() - started
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.seek(0)
        output = log.read()[-2000:] if code is None or code else ""
    if code is None:
        output += f"\n(timed out after {step.timeout_s:.0f} s)"
    return Timing(step.name, wall, code == 0, output)


def trial(label: str, steps: Sequence[Step], home: Path | None, busy: int) -> Trial:
    """Clone HEAD into a temporary folder and run `steps` there; the folder is removed."""
    root = Path(tempfile.mkdtemp(prefix="fraudops-first-run-"))
    try:
        env = user_env(home)
        started = time.perf_counter()
        clone = ["git", "clone", "--quiet", "--no-hardlinks", str(REPO_ROOT), str(root / "clone")]
        subprocess.run(clone, env=env, check=True, capture_output=True)
        clone_s = time.perf_counter() - started
        timings: list[Timing] = []
        busy0, children0 = _machine_busy_s(), _children_cpu_s()
        with busy_loops(busy, sum(s.timeout_s for s in steps)):
            for step in steps:
                timings.append(run_step(step, root / "clone", env))
                if not timings[-1].ok:
                    break
        other = _machine_busy_s() - busy0 - (_children_cpu_s() - children0)
        names = tuple(s.name for s in steps)
        return Trial(label, names, clone_s, tuple(timings), busy, max(0.0, other))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def trials(ctx: Context, steps: Sequence[Step] = STEPS) -> list[Trial]:
    """Quiet with the user's HOME; then (not in quick mode) loaded with an empty HOME."""
    done = [trial("quiet, user's HOME (warm caches)", steps, None, 0)]
    if not ctx.quick:
        home = ctx.scratch("first-run-home")
        home.mkdir()
        cores = len(os.sched_getaffinity(0))
        try:
            done.append(trial(f"{cores} busy loops, empty HOME", steps, home, cores))
        finally:
            shutil.rmtree(home, ignore_errors=True)
    return done


def run(ctx: Context) -> SectionResult:
    """Time install and run from fresh clones; the quiet trial's sum is the target."""
    return report(trials(ctx))


def report(done: Sequence[Trial]) -> SectionResult:
    """The section's table, notes and targets: the quiet trial's time, the loaded one's end."""
    quiet = done[0]
    suspect = quiet.other_cpu_s > CONTENTION_SHARE * quiet.total_s
    targets = [
        Target(
            "fresh clone, quiet: " + " + ".join(quiet.planned),
            f"< {TARGET_S:.0f} s",
            f"{quiet.total_s:.0f} s" + ("" if quiet.ok else " (failed)"),
            quiet.ok and quiet.total_s < TARGET_S,
            suspect,
        )
    ]
    targets += [
        Target(
            f"fresh clone, {t.label}",
            "succeeds",
            f"{'yes' if t.ok else 'no'}, {t.total_s:.0f} s",
            t.ok,
        )
        for t in done[1:]
    ]
    body = [
        f"Measured {now_utc()}. Each trial clones the committed HEAD into an empty temporary "
        "folder and runs the README's commands there, timed apart, with a user's shell "
        "environment (no virtualenv or uv of the benchmark's own). The second trial has an "
        "empty HOME while busy loops (`sh -c 'while :; do :; done'`, one per usable core) "
        "occupy the CPU; uv's and pip's download caches stay the user's in both, so neither "
        "downloads the locked environment again. *Other CPU s*: what other processes used "
        "meanwhile (the busy loops included).",
        _table(done),
        *_failures(done),
        "### Targets",
        targets_table(targets),
    ]
    return SectionResult("\n\n".join(body), targets)


def _cell(value: float | None) -> str:
    return "-" if value is None else seconds(value)


def _table(done: Sequence[Trial]) -> str:
    planned = done[0].planned
    rows = [
        (
            t.label,
            seconds(t.clone_s),
            *(_cell(t.wall(name)) for name in planned),
            seconds(t.total_s),
            f"{t.other_cpu_s:.0f}",
            "yes" if t.ok else "**no**",
        )
        for t in done
    ]
    headers = ("Trial", "git clone s", *(f"{name} s" for name in planned))
    return table((*headers, "Sum s", "Other CPU s", "Succeeded"), rows)


def _failures(done: Sequence[Trial]) -> list[str]:
    return [
        f"**{t.label}: `{bad.step}` failed**; the end of its output:\n\n"
        f"```\n{bad.tail.strip()}\n```"
        for t in done
        for bad in t.timings
        if not bad.ok
    ]
