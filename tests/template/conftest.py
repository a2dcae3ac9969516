"""Template fixtures: render this repository's current commit with Copier, list file trees."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO_ROOT, run

# The answers every template test gives: an identity other than the current one (a project
# made with `make init NAME="Acme Risk"` is still a template, and its tests rename it again).
_CURRENT = yaml.safe_load((REPO_ROOT / "configs/project.yaml").read_text())["slug"]
NEW = (
    {"project_name": "Acme Risk", "slug": "acme-risk"}
    if _CURRENT != "acme-risk"
    else {"project_name": "Beta Bank", "slug": "beta-bank"}
)
# Files only the template's root has (Copier's config and answers-file template) ...
TEMPLATE_ONLY = {"copier.yml", "{{ _copier_conf.answers_file }}.jinja"}
# ... and the one only a Copier render has.
ANSWERS = ".copier-answers.yml"
# `copier update` commits in scratch repositories: a CI machine may have no git identity.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "template-tests",
    "GIT_AUTHOR_EMAIL": "template-tests@example.com",
    "GIT_COMMITTER_NAME": "template-tests",
    "GIT_COMMITTER_EMAIL": "template-tests@example.com",
}


def head() -> str:
    """The commit under test: renders use it, never the (possibly dirty) working tree."""
    return run(REPO_ROOT, "git", "rev-parse", "HEAD").strip()


def committed_files() -> set[str]:
    """Every file of the commit under test."""
    return set(run(REPO_ROOT, "git", "ls-tree", "-r", "--name-only", head()).splitlines())


def copier(cwd: Path, *args: str) -> str:
    """Run the Copier CLI of this environment (its tasks run with this interpreter too)."""
    return run(cwd, sys.executable, "-m", "copier", *args, env=GIT_IDENTITY)


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


def uv() -> str:
    """The uv the parent project was installed with (PATH, else the Makefile's .tools)."""
    found = shutil.which("uv") or str(REPO_ROOT / ".tools/bin/uv")
    assert os.access(found, os.X_OK), f"no uv at {found}"
    return found
