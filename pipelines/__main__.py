"""Command line: `python -m pipelines <stage>`; subcommands are the `dvc.yaml` stage names."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, get_args

import yaml

from pipelines import stages
from pipelines.config import (
    DEFAULT_PIPELINE_CONFIG,
    DriftScenario,
    PipelineConfig,
    load_pipeline_config,
)
from pipelines.errors import ConfigError, FraudOpsError

log = logging.getLogger("pipelines")


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PIPELINE_CONFIG,
        help="pipeline config (default: %(default)s)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        type=_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. generate.n_days=30",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="STAGE")
    gen = sub.add_parser("generate", help="simulate (or import) raw transactions")
    gen.add_argument("--period", choices=["history", "production"], default="history")
    gen.add_argument(
        "--drift",
        choices=get_args(DriftScenario),
        default=None,
        help="production drift scenario (default: from the config)",
    )
    gen.add_argument("--output", type=Path, default=None, help="production output path")
    sub.add_parser("validate", help="check the contract, quarantine bad rows")
    sub.add_parser("features", help="compute point-in-time features with DuckDB")
    sub.add_parser("train", help="fit the configured estimator on the latest training block")
    sub.add_parser("evaluate", help="metrics, threshold, prequential folds, explanations")
    return parser


def _run(args: argparse.Namespace, cfg: PipelineConfig) -> None:
    commands: dict[str, Callable[[], object]] = {
        "generate": lambda: (
            stages.generate_production(cfg, args.drift, args.output)
            if args.period == "production"
            else stages.generate(cfg)
        ),
        "validate": lambda: stages.validate(cfg),
        "features": lambda: stages.features(cfg),
        "train": lambda: stages.train(cfg),
        "evaluate": lambda: stages.evaluate(cfg),
    }
    commands[args.command]()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage; expected failures print one line and return a non-zero code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = _parser().parse_args(argv)
    try:
        cfg = load_pipeline_config(args.config, dict(args.overrides))
        _run(args, cfg)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FraudOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
