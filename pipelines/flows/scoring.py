"""The batch transform as a Prefect flow: `python -m pipelines score` with Prefect's run
history, logs and scheduling (a nightly file, say). Not a DVC stage: a file scored on demand
is no pipeline output; the flow reads the committed config and writes only `output`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task

from pipelines.config import (
    DEFAULT_PIPELINE_CONFIG,
    DEFAULT_PROJECT_CONFIG,
    load_pipeline_config,
    load_project_config,
)
from pipelines.reasons import TOP
from pipelines.score import score_file


@task(name="score")
def score_task(
    config: str,
    overrides: dict[str, Any] | None,
    project: str,
    input_path: str,
    output: str,
    version: int | None,
    with_history: bool,
    reasons: int,
    fast_reasons: bool,
) -> dict[str, Any]:
    """Score `input_path` into `output` (no retries: what fails here fails again)."""
    cfg = load_pipeline_config(Path(config), overrides)
    done = score_file(
        cfg,
        load_project_config(Path(project)),
        Path(input_path),
        Path(output),
        version,
        with_history,
        max(reasons, 0),
        "approximate" if fast_reasons else "exact",
    )
    return {
        "output": str(done.output),
        "rows": done.rows,
        "flagged": done.flagged,
        "quarantined": done.quarantined,
        "quarantine": None if done.quarantine is None else str(done.quarantine),
        "version": done.version,
        "reasons": done.reasons,
        "method": done.method,
    }


@flow(name="fraud-score", log_prints=True)
def score_flow(
    input_path: str,
    output: str,
    version: int | None = None,
    with_history: bool = False,
    reasons: int = TOP,
    fast_reasons: bool = False,
    config: str = str(DEFAULT_PIPELINE_CONFIG),
    overrides: dict[str, Any] | None = None,
    project: str = str(DEFAULT_PROJECT_CONFIG),
) -> dict[str, Any]:
    """Batch transform: the champion's (or `version`'s) scores and reasons of a file."""
    result = score_task(
        config,
        overrides,
        project,
        input_path,
        output,
        version,
        with_history,
        reasons,
        fast_reasons,
    )
    kept = f", {result['quarantined']} quarantined in {result['quarantine']}"
    print(
        f"scored {result['rows']} transactions with version {result['version']} "
        f"({result['flagged']} flagged) -> {result['output']}"
        + (kept if result["quarantined"] else "")
    )
    return result
