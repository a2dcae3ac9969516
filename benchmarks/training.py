"""Section `training`: `make run`'s lifecycle from a fresh copy, and the model's quality.

The lifecycle flow runs in a fresh copy of the committed project (its own DVC cache and
MLflow store), timed from generating data to a registered champion; the environment install
is not part of it. Quality is the prequential mean over the configured folds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.context import Context, project_copy
from benchmarks.report import SectionResult, Target, now_utc, table, targets_table

TARGET_S = 180.0
QUALITY = (
    ("average_precision", 0.70, 0.694),
    ("roc_auc", 0.87, 0.872),
    ("card_precision_at_k", 0.30, 0.304),
)


def run(ctx: Context) -> SectionResult:
    """Run the lifecycle flow once in a fresh copy; read its evaluation."""
    root = project_copy(ctx)
    env = {**os.environ, "MLFLOW_TRACKING_URI": "", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.flows", "lifecycle"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"lifecycle flow failed:\n{done.stderr[-3000:]}")
    evaluation = json.loads((root / "metrics/evaluate.json").read_text())
    pre, test = evaluation["prequential"], evaluation["test"]
    rows = [
        (
            name,
            f"{pre[name]['mean']:.3f} ± {pre[name]['std']:.3f}",
            f"{test[name]:.3f}",
            f"{book:.3f}",
        )
        for name, _, book in QUALITY
    ]
    rows.append(
        (
            "recall_at_fpr (1 %)",
            f"{pre['recall_at_fpr']['mean']:.3f}",
            f"{test['recall_at_fpr']:.3f}",
            "-",
        )
    )
    targets = [
        Target(
            f"{name} (prequential mean)",
            f">= {floor}",
            f"{pre[name]['mean']:.3f}",
            pre[name]["mean"] >= floor,
        )
        for name, floor, _ in QUALITY
    ]
    targets.append(
        Target(
            "make run: data to champion", f"< {TARGET_S:.0f} s", f"{wall:.0f} s", wall < TARGET_S
        )
    )
    body = [
        f"Measured {now_utc()}. `python -m pipelines.flows lifecycle` (what `make run` runs) in "
        f"a fresh copy of the committed project: {wall:.1f} s wall from simulating the data to "
        f"a registered champion (Prefect's temporary API start included; the environment "
        f"install is not). Estimator `{_estimator(root)}`, "
        f"{len(evaluation['folds'])} prequential folds.",
        table(
            ("Metric", "Prequential mean ± sd", "Test block (fold 0)", "Handbook's best model"),
            rows,
        ),
        "### Targets",
        targets_table(targets),
    ]
    return SectionResult("\n\n".join(body), targets)


def _estimator(root: Path) -> str:
    import yaml

    cfg = yaml.safe_load((root / "configs/pipeline.yaml").read_text())
    return str(cfg["train"]["estimator"])
