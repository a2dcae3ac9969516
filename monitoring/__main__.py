"""`python -m monitoring run|simulate`: one monitoring window, or the simulated closed loop."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, get_args

from pipelines.cli import add_set_option, exit_code
from pipelines.config import (
    DEFAULT_MONITORING_CONFIG,
    DEFAULT_PIPELINE_CONFIG,
    DEFAULT_PROJECT_CONFIG,
    DriftScenario,
    load_monitoring_config,
    load_pipeline_config,
    load_project_config,
)
from pipelines.errors import FraudOpsError
from pipelines.flows import runtime


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitoring", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_MONITORING_CONFIG)
    add_set_option(parser, "override a monitoring config value, e.g. decisions.max_ap_drop=0.1")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="monitor one window of captured predictions")
    run.add_argument("--start", type=dt.datetime.fromisoformat, default=None)
    run.add_argument("--end", type=dt.datetime.fromisoformat, default=None)
    run.add_argument("--capture-dir", default=None, help="default: capture.dir of serving")
    run.add_argument(
        "--labels",
        dest="label_files",
        action="append",
        default=[],
        help="a batch label file (parquet/CSV: transaction_id, tx_fraud)",
    )
    sim = sub.add_parser("simulate", help="production days -> scoring -> labels -> monitoring")
    sim.add_argument("--drift", choices=get_args(DriftScenario), default="new_fraud_pattern")
    sim.add_argument("--days", type=int, default=None, help="default: production.n_days")
    sim.add_argument("--timeline", type=Path, default=None, help="also write the timeline as JSON")
    sim.add_argument(
        "--service-url",
        default=os.environ.get("FRAUDOPS_SERVICE_URL"),
        help="a running service (default: the app in-process)",
    )
    return parser


def _simulate(args: argparse.Namespace, overrides: dict[str, Any]) -> str:
    from monitoring import simulate
    from monitoring.flows import monitoring_flow
    from pipelines import tracking
    from pipelines.flows.training import lifecycle_flow
    from pipelines.promote import CHAMPION

    cfg = load_pipeline_config(DEFAULT_PIPELINE_CONFIG)
    mon = load_monitoring_config(args.config, overrides)
    name = load_project_config(DEFAULT_PROJECT_CONFIG).registered_model_name
    tracking.connect()
    if tracking.alias_version(name, CHAMPION) is None:
        print("no champion yet: running the lifecycle first", flush=True)
        lifecycle_flow()
        if tracking.alias_version(name, CHAMPION) is None:
            raise FraudOpsError(f"no champion of {name!r}: the gate refused the first model")
    frame = simulate.production_period(cfg, args.drift, args.days or cfg.production.n_days)
    capture = mon.reports_dir / "simulation" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    if args.service_url:
        from serving.settings import load_settings

        capture = load_settings().capture.dir

    def monitor(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        return monitoring_flow(str(args.config), overrides, start, end, str(capture))

    def champion() -> int | None:
        return tracking.alias_version(name, CHAMPION)

    token = os.environ.get("FRAUDOPS_ADMIN_TOKEN")
    with simulate.service_client(args.service_url, capture, token) as client:
        timeline = simulate.run(
            frame,
            client,
            monitor,
            champion,
            mon.window_days,
            cfg.features.label_delay_days,
            batch_rows=1000,
            settle_s=2.5,
        )
    if args.timeline:
        args.timeline.write_text(
            json.dumps([simulate.as_dict(w) for w in timeline], indent=2, default=str)
        )
    head = (
        f"simulated {len(frame)} production transactions over "
        f"{args.days or cfg.production.n_days} days (drift: {args.drift}); "
        f"labels {cfg.features.label_delay_days} days late; windows of {mon.window_days} days"
    )
    return "\n".join([head, *(simulate.line(w) for w in timeline)])


def _main(args: argparse.Namespace) -> None:
    overrides = dict(args.overrides)
    if args.command == "simulate":
        print(_simulate(args, overrides))
        return
    from monitoring.flows import monitoring_flow

    result = monitoring_flow(
        str(args.config), overrides, args.start, args.end, args.capture_dir, args.label_files
    )
    print(f"{result['decision']}: " + "; ".join(result["reasons"]))


def main(argv: list[str] | None = None) -> int:
    """Run the command; expected failures print one line and return non-zero."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    args = _parser().parse_args(argv)
    runtime.prepare()  # Prefect's home and start-up limit, before Prefect is imported
    return exit_code(lambda: runtime.run(lambda: _main(args)))


if __name__ == "__main__":
    sys.exit(main())
