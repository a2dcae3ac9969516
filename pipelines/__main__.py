"""Command line: `python -m pipelines <stage>`; subcommands are the `dvc.yaml` stage names."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

from pipelines import stages
from pipelines.cli import add_set_option, exit_code
from pipelines.config import (
    DEFAULT_PIPELINE_CONFIG,
    DEFAULT_PROJECT_CONFIG,
    DriftScenario,
    PipelineConfig,
    load_monitoring_config,
    load_pipeline_config,
    load_project_config,
)


def actor() -> str:
    """Who is acting, for audit records: FRAUDOPS_ACTOR, else the login name."""
    return os.environ.get("FRAUDOPS_ACTOR") or getpass.getuser()


log = logging.getLogger("pipelines")
FORCE_HELP = (
    "accept a version that is incomplete, has no gate verdict or failed the gate "
    "(recorded, with the reason, in the audit tags)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PIPELINE_CONFIG,
        help="pipeline config (default: %(default)s)",
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=DEFAULT_PROJECT_CONFIG,
        help="project identity (default: %(default)s)",
    )
    add_set_option(parser, "override a config value, e.g. generate.n_days=30")
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
    sub.add_parser("features", help="compute point-in-time features (engine.kind: DuckDB or Spark)")
    sub.add_parser("materialize", help="write the events that seed the online store")
    sub.add_parser("train", help="fit the configured estimator on the latest training block")
    sub.add_parser("evaluate", help="metrics, threshold, prequential folds, explanations")
    sub.add_parser("reference", help="write the monitoring reference window (scored sample)")
    sub.add_parser("register", help="log to MLflow, register as challenger, gate, promote")
    promote = sub.add_parser("promote", help="make a version champion (manual approval)")
    promote.add_argument("--version", type=int, required=True)
    promote.add_argument("--reason", required=True)
    promote.add_argument("--force", action="store_true", help=FORCE_HELP)
    score = sub.add_parser(
        "score", help="batch transform: score a file with the champion (or --version)"
    )
    score.add_argument("--input", type=Path, required=True, help="parquet or CSV, source shape")
    score.add_argument("--output", type=Path, required=True, help="scores: .parquet or .csv")
    score.add_argument("--version", type=int, default=None, help="default: the champion")
    score.add_argument(
        "--with-history",
        action="store_true",
        help="windows also hold the project's clean data (paths.clean), as the service's do",
    )
    score.add_argument(
        "--reasons",
        type=int,
        default=3,
        metavar="K",
        help="the K largest feature contributions per score (default 3; 0: none)",
    )
    score.add_argument(
        "--fast-reasons",
        action="store_true",
        help="Saabas's path attribution (about 90x cheaper, often another top reason) "
        "instead of exact TreeSHAP",
    )
    tune = sub.add_parser(
        "tune", help="Optuna search over the folds; proposes its best params as a config diff"
    )
    tune.add_argument(
        "--dry-run",
        action="store_true",
        help="print the diff and leave the config as it is (the study keeps its trials)",
    )
    rollback = sub.add_parser("rollback", help="give champion back to the previous champion")
    rollback.add_argument("--reason", default="manual rollback")
    rollback.add_argument("--force", action="store_true", help=FORCE_HELP)
    return parser


STAGES: dict[str, Callable[[PipelineConfig], object]] = {
    "validate": stages.validate,
    "features": stages.features,
    "materialize": stages.materialize,
    "train": stages.train,
    "evaluate": stages.evaluate,
}


def _run(args: argparse.Namespace, cfg: PipelineConfig) -> None:
    if args.command == "generate":
        if args.period == "production":
            stages.generate_production(cfg, args.drift, args.output)
        else:
            stages.generate(cfg)
        return
    if args.command in STAGES:
        STAGES[args.command](cfg)
        return
    if args.command == "reference":
        stages.reference(cfg, load_monitoring_config())
        return
    from pipelines.promote import promote, rollback  # MLflow: only for the registry commands
    from pipelines.register import describe, register
    from pipelines.tracking import configure

    project = load_project_config(args.project)
    name = project.registered_model_name
    if args.command == "score":
        from pipelines.reasons import Method
        from pipelines.score import score_file

        method: Method = "approximate" if args.fast_reasons else "exact"
        done = score_file(
            cfg,
            project,
            args.input,
            args.output,
            args.version,
            args.with_history,
            max(args.reasons, 0),
            method,
        )
        kept = f"; {done.quarantined} quarantined in {done.quarantine}" if done.quarantine else ""
        why = f", {done.reasons} reasons each ({done.method})" if done.method else ""
        print(
            f"scored {done.rows} transactions with {name} version {done.version} "
            f"({done.flagged} flagged{why}) -> {done.output}{kept}"
        )
        return
    if args.command == "register":
        print(describe(register(cfg, project, actor())))
        return
    if args.command == "tune":
        from pipelines.proposal import describe as describe_proposal
        from pipelines.proposal import propose
        from pipelines.tune import tune

        outcome = tune(cfg, project.experiment_name)
        proposal = propose(args.config, cfg.train.estimator, outcome.best_params, not args.dry_run)
        print(describe_proposal(outcome, proposal))
        return
    configure(project.experiment_name)
    if args.command == "promote":
        promote(name, args.version, args.reason, actor(), force=args.force)
        print(f"champion of {name} is now version {args.version}")
    else:
        target = rollback(name, args.reason, actor(), force=args.force)
        print(f"champion of {name} is now version {target}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage; expected failures print one line and return a non-zero code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = _parser().parse_args(argv)
    return exit_code(lambda: _run(args, load_pipeline_config(args.config, dict(args.overrides))))


if __name__ == "__main__":
    sys.exit(main())
