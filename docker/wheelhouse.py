"""Prepare docker/wheels/ for an air-gapped image build, from uv.lock.

    python docker/wheelhouse.py serving                  # for docker/serving.Dockerfile
    python docker/wheelhouse.py pipelines monitoring     # for docker/pipelines.Dockerfile

Every wheel the image installs (the extras named, hash-checked against the lockfile), uv
itself and hatchling (to build the project). With wheels there, the Dockerfiles install with
--no-index and reach no package index. Wheels are for CPython 3.11 on glibc >= 2.36 (Debian
bookworm) on this machine's CPU. A package published only as source is built into a wheel
here. What the folder already holds is not fetched again: a complete wheelhouse needs no
network at all.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIP = "pip==26.3"
# Any CPython 3.11 on Linux: a requirement is kept if its marker holds for one patch release
# (Debian's 3.11.2 needs async-timeout, which a newer 3.11 does not).
TARGETS = [
    {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": platform.machine(),
        "python_version": "3.11",
        "python_full_version": f"3.11.{patch}",
    }
    for patch in range(30)
]


def for_target(exported: str) -> list[str]:
    """The exported requirements any CPython 3.11 on Linux installs, markers dropped."""
    kept = []
    for block in re.split(r"\n(?=\S)", exported):
        if not block.strip() or block.startswith("#"):
            continue
        head, sep, rest = block.partition(" \\")
        name, _, marker = head.partition(" ; ")
        if not marker or any(Marker(marker).evaluate(env) for env in TARGETS):
            kept.append(name + sep + rest)
    return kept


def source_only() -> set[str]:
    """Packages that uv.lock knows only as a source distribution (no wheel published)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {
        str(canonicalize_name(p["name"]))
        for p in lock["package"]
        if "sdist" in p and not p.get("wheels")
    }


def missing(requirements: list[str], dest: Path, built: set[str]) -> list[str]:
    """Requirements with no wheel in `dest`: by lockfile hash, or by name when built here."""
    have = {hashlib.sha256(w.read_bytes()).hexdigest() for w in dest.glob("*.whl")}
    names = {_name_version(w.name.split("-")[0], w.name.split("-")[1]) for w in dest.glob("*.whl")}
    todo = []
    for req in requirements:
        name, _, version = req.split()[0].partition("==")
        if str(canonicalize_name(name)) in built:
            found = _name_version(name, version) in names
        else:
            found = bool(have.intersection(re.findall(r"sha256:(\w+)", req)))
        if not found:
            todo.append(req)
    return todo


def _name_version(name: str, version: str) -> str:
    return f"{canonicalize_name(name)}=={version}"


def pip(uv: str, *args: str) -> None:
    """Run pip (pinned, from uv's tool cache) quietly."""
    base = [uv, "tool", "run", "--from", PIP, "pip"]
    subprocess.run([*base, *args, "--quiet", "--disable-pip-version-check"], check=True)


def download(uv: str, dest: Path, *args: str) -> None:
    """`pip download` of binary wheels for the target, into `dest`."""
    machine = platform.machine()
    tags = [f"manylinux_2_{glibc}_{machine}" for glibc in range(36, 4, -1)]
    tags += [f"{legacy}_{machine}" for legacy in ("manylinux2014", "manylinux2010")]
    target = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    for tag in tags:  # pip does not widen a manylinux tag to the older ones glibc runs
        target += ["--platform", tag]
    pip(uv, "download", "--only-binary=:all:", *target, "--dest", str(dest), *args)


def fetch(uv: str, dest: Path, requirements: list[str], built: set[str]) -> None:
    """Download the binary wheels and build the source-only packages (hash-checked)."""
    for kind in ("binary", "source"):
        todo = [r for r in requirements if (kind == "source") == (_canonical(r) in built)]
        if not todo:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
            file.write("\n".join(todo) + "\n")
            file.flush()
            hashed = ["--no-deps", "--require-hashes", "-r", file.name]
            if kind == "binary":
                download(uv, dest, *hashed)
            else:
                pip(uv, "wheel", "--no-binary=:all:", "--wheel-dir", str(dest), *hashed)


def _canonical(requirement: str) -> str:
    return str(canonicalize_name(requirement.split()[0].partition("==")[0]))


def uv_version() -> str:
    """The uv version the Makefile pins (the images install the same one)."""
    found = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    if found is None:
        raise SystemExit("Makefile: no `UV_VERSION := ...` line")
    return found.group(1)


def default_uv() -> str:
    """The uv that runs us (`uv run` sets UV), else the one on PATH, else `make`'s bootstrap."""
    found = os.environ.get("UV") or shutil.which("uv")
    return found or str(ROOT / ".tools/bin/uv")


def main(argv: list[str] | None = None) -> int:
    """Fill the wheelhouse for the extras named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extras", nargs="+", help="extras of pyproject.toml")
    parser.add_argument("--dest", type=Path, default=ROOT / "docker/wheels")
    parser.add_argument(
        "--uv", default=default_uv(), help="the uv executable (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    export = [args.uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--quiet"]
    for extra in args.extras:
        export += ["--extra", extra]
    exported = subprocess.run(export, cwd=ROOT, check=True, capture_output=True, text=True)
    args.dest.mkdir(parents=True, exist_ok=True)
    built = source_only()
    fetch(args.uv, args.dest, missing(for_target(exported.stdout), args.dest, built), built)
    uv = uv_version()
    if not (list(args.dest.glob(f"uv-{uv}-*.whl")) and list(args.dest.glob("hatchling-*.whl"))):
        download(args.uv, args.dest, f"uv=={uv}", "hatchling>=1.25")
    wheels = list(args.dest.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels) / 1e6
    print(f"{len(wheels)} wheels in {args.dest} ({size:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
