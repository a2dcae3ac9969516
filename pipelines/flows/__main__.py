"""`python -m pipelines.flows [lifecycle|training]`: run a flow in-process and summarise it."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from pipelines import tracking
from pipelines.cli import add_set_option, exit_code
from pipelines.flows import runtime
from pipelines.register import orphans_line


def summary(result: dict[str, Any]) -> str:
    """What happened, and the command that shows it in the MLflow UI."""
    m = result["metrics"]
    lines = [
        "",
        f"model version {result['version']} ({'reused' if result['reused'] else 'new'}), "
        f"alias challenger",
        f"  test block: AP {m['average_precision']:.3f}  ROC AUC {m['roc_auc']:.3f}  "
        f"CP@k {m['card_precision_at_k']:.3f} (all cards "
        f"{m['card_precision_at_k_all_cards']:.3f})  "
        f"recall@1%FPR {m['recall_at_fpr']:.3f}",
        f"  gate: {result['gate']}",
        f"  champion: version {result['champion']}"
        + (" (promoted now)" if result["promoted"] else ""),
        *([f"  {orphans_line(tuple(result['orphaned']))}"] if result["orphaned"] else []),
        "",
        "Open the MLflow UI on these runs:",
        f"  {ui_command()}",
    ]
    return "\n".join(lines)


def ui_command() -> str:
    """The exact command that opens the MLflow UI on the store this run used."""
    uri = tracking.tracking_uri()
    if uri.startswith("http"):
        return f"open {uri}"
    if uri == tracking.local_uri():
        uri = f"sqlite:///{tracking.LOCAL_STORE}/mlflow.db"  # from the project root
    return (
        f"{uv()} run mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000 --workers 1"
    )


def uv() -> str:
    """How to call uv here: `uv` when it is on PATH, else the one `make install` bootstrapped."""
    if shutil.which("uv") or not Path(".tools/bin/uv").exists():
        return "uv"
    return ".tools/bin/uv"


def parser() -> argparse.ArgumentParser:
    """The command line: which flow, and `--set` overrides for this run."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.flows")
    parser.add_argument("flow", choices=["lifecycle", "training"], nargs="?", default="lifecycle")
    add_set_option(parser, "override a config value for this run (recorded with it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the chosen flow and print its summary; SIGTERM or Ctrl-C stop it within 10 s."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Prefect API call is noise
    overrides = dict(args.overrides)
    runtime.prepare()  # before Prefect is imported
    from pipelines.flows.training import lifecycle_flow, training_flow

    chosen = lifecycle_flow if args.flow == "lifecycle" else training_flow

    def run() -> None:
        print(summary(runtime.run(lambda: chosen(overrides=overrides or None))))

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
