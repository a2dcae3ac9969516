"""What every command line of the project shares: `--set KEY=VALUE` and exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from pipelines.config import parse_override
from pipelines.errors import ERROR_FILE_ENV, ConfigError, FraudOpsError


def _override(text: str) -> tuple[str, Any]:
    try:
        return parse_override(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_set_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--set KEY=VALUE` (repeatable), parsed and checked as it is read."""
    parser.add_argument(
        "--set",
        dest="overrides",
        type=_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help_text,
    )


def exit_code(command: Callable[[], None]) -> int:
    """Run `command`; expected failures print one line: 2 for config, 1 for the rest."""
    try:
        command()
    except ConfigError as exc:
        _report(exc)
        return 2
    except FraudOpsError as exc:
        _report(exc)
        return 1
    return 0


def _report(exc: FraudOpsError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    path = os.environ.get(ERROR_FILE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{exc}\n")
