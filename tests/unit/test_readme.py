"""The README's commands are real: every `make` target it shows exists, every project command
it shows parses with the project's own command line, and every tool it runs is installed."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def _commands() -> list[list[str]]:
    """Each shell command in the README's bash blocks, comments and continuations removed."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                found.append(words)
    return found


def _parsers() -> dict[str, argparse.ArgumentParser]:
    from monitoring.__main__ import _parser as monitoring
    from pipelines.__main__ import _parser as pipelines
    from pipelines.flows.__main__ import parser as flows

    return {"pipelines": pipelines(), "pipelines.flows": flows(), "monitoring": monitoring()}


MAKE = [c for c in _commands() if c[0] == "make"]
UV = [c[2:] for c in _commands() if c[:2] == ["uv", "run"]]


@pytest.mark.parametrize("command", MAKE, ids=" ".join)
def test_make_targets_exist(command: list[str]) -> None:
    targets = set(re.findall(r"(?m)^([a-zA-Z_-]+):", (REPO_ROOT / "Makefile").read_text()))
    target = next(w for w in command[1:] if "=" not in w)
    assert target in targets, f"README shows `make {target}`; the Makefile has no such target"


@pytest.mark.parametrize("command", UV, ids=" ".join)
def test_uv_run_commands_parse(command: list[str]) -> None:
    if command[:2] == ["python", "-m"]:
        module, args = command[2], command[3:]
        parsers = _parsers()
        assert module in parsers, f"README runs `python -m {module}`, which is not a project CLI"
        parsers[module].parse_args(args)  # SystemExit(2) on an unknown flag or subcommand
    else:
        assert (BIN / command[0]).exists(), f"README runs `{command[0]}`, not in the environment"


def test_the_readme_says_how_to_reach_uv() -> None:
    """`uv run ...` works as typed only with uv on PATH: the README says what to type."""
    assert UV, "no uv commands found: the parser above is broken"
    assert 'export PATH="$PWD/.tools/bin:$PATH"' in README
