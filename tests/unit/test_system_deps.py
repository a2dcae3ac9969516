"""scripts/system-deps.sh: silent when nothing is missing, one line and apt-get otherwise.

The script runs with a PATH of stubs only: the tools it looks for are empty executables,
`apt-get` and `sudo` record their arguments, so nothing is installed for real.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "system-deps.sh"
TOOLS = ("redis-server", "podman", "runc", "debootstrap", "java", "wrk")
CONTAINER = ("podman", "conmon", "netavark", "aardvark-dns", "fuse-overlayfs", "catatonit")
RECORD = '#!/bin/sh\necho "{name} $*" >> "$LOG"\n{tail}'


def stub(folder: Path, name: str, body: str = "#!/bin/sh\n") -> None:
    """An executable `name` in `folder` running `body`."""
    path = folder / name
    path.write_text(body)
    path.chmod(0o755)


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    """A PATH folder with every tool present, apt-get and sudo recording, and initdb."""
    bin_dir, pg_bin = tmp_path / "bin", tmp_path / "pg"
    bin_dir.mkdir()
    pg_bin.mkdir()
    for name in TOOLS:
        stub(bin_dir, name)
    stub(pg_bin, "initdb")
    stub(bin_dir, "apt-get", RECORD.format(name="apt-get", tail=""))
    stub(bin_dir, "sudo", RECORD.format(name="sudo", tail='exec "$@"\n'))
    env = shutil.which("env")
    assert env is not None
    (bin_dir / "env").symlink_to(env)
    return tmp_path


def run(machine: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The script with only the stubs on PATH."""
    variables = {
        "PATH": str(machine / "bin"),
        "FRAUDOPS_PG_BIN": str(machine / "pg"),
        "LOG": str(machine / "calls.log"),
        **env,
    }
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=variables, capture_output=True, text=True, timeout=30
    )


def calls(machine: Path) -> list[str]:
    """The recorded apt-get and sudo calls, in order."""
    log = machine / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_nothing_missing_is_silent(machine: Path) -> None:
    done = run(machine)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert calls(machine) == []


def test_missing_packages_are_named_in_one_line_and_installed(machine: Path) -> None:
    for name in ("redis-server", "java", "wrk", "podman"):
        (machine / "bin" / name).unlink()
    (machine / "pg" / "initdb").unlink()
    done = run(machine)
    assert done.returncode == 0, done.stderr
    expected = ["redis-server", "postgresql-15", *CONTAINER, "uidmap", "slirp4netns"]
    expected += ["openjdk-17-jre-headless", "wrk"]
    [line] = done.stderr.splitlines()
    assert line.startswith(f"system-deps: installing {' '.join(expected)} with ")
    assert "integration tests" in line
    assert "FRAUDOPS_SYSTEM_DEPS=skip" in line
    apt = [c.split()[1:] for c in calls(machine) if c.startswith("apt-get")]
    install = ["install", "-y", "-qq", "--no-install-recommends", *expected]
    assert apt == [["update", "-qq"], install]


def test_skip_installs_nothing(machine: Path) -> None:
    (machine / "bin" / "redis-server").unlink()
    done = run(machine, FRAUDOPS_SYSTEM_DEPS="skip")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert calls(machine) == []


def test_without_apt_get_one_line_names_the_packages(machine: Path) -> None:
    (machine / "bin" / "redis-server").unlink()
    (machine / "bin" / "apt-get").unlink()
    done = run(machine)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert "no apt-get" in line
    assert "install them yourself: redis-server (Redis for the integration tests)" in line
    assert calls(machine) == []


def test_a_failed_install_is_one_line_and_an_error(machine: Path) -> None:
    (machine / "bin" / "wrk").unlink()
    stub(machine / "bin", "apt-get", '#!/bin/sh\necho "E: no network" >&2\nexit 100\n')
    done = run(machine)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("system-deps: apt-get update failed; ")
    assert "wrk" in done.stderr.splitlines()[-1]
