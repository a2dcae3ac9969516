"""Flows `fraud-training` and `fraud-lifecycle`: the DVC stages as Prefect tasks, in the
order of `dvc.yaml`, then register, gate and promote.

Each DVC stage task asks DVC to reproduce that one stage: a stage whose code, params and
inputs did not change is a no-op from DVC's cache. Tasks that talk to MLflow retry on
failure (I/O); deterministic compute never does.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from pipelines import register as registry
from pipelines import tracking, versioning
from pipelines.config import (
    DEFAULT_PIPELINE_CONFIG,
    DEFAULT_PROJECT_CONFIG,
    PipelineConfig,
    ProjectConfig,
    load_pipeline_config,
    load_project_config,
    typed_overrides,
)
from pipelines.flows import runtime
from pipelines.promote import CHAMPION, promote

log = logging.getLogger(__name__)
DATA_STAGES = ("generate", "validate", "features", "materialize")


@task(name="stage")
def run_stage(stage: str) -> list[str]:
    """Reproduce one DVC stage (a no-op when nothing it depends on changed)."""
    runtime.check_not_stopping(f"stage {stage}")
    ran = versioning.reproduce(stage, stopping=runtime.STOP.is_set)
    get_run_logger().info("%s: %s", stage, "ran" if ran else "up to date (DVC cache)")
    return ran


@task(name="register", retries=2, retry_delay_seconds=5)
def register_task(cfg: PipelineConfig, project: ProjectConfig) -> registry.Challenger:
    """Log the evaluated model to MLflow and register it as challenger."""
    return registry.register_challenger(cfg, project)


@task(name="gate", retries=2, retry_delay_seconds=5)
def gate_task(
    cfg: PipelineConfig, project: ProjectConfig, challenger: registry.Challenger
) -> tuple[bool, str, dict[str, float] | None]:
    """Floors and the margin over the re-scored champion."""
    decision, before = registry.gate_challenger(cfg, project, challenger)
    return decision.passed, decision.summary(), before


@task(name="promote", retries=2, retry_delay_seconds=5)
def promote_task(
    project: ProjectConfig,
    challenger: registry.Challenger,
    reason: str,
    before: dict[str, float] | None,
) -> int | None:
    """Move `champion` to the challenger; return the champion version."""
    name = project.registered_model_name
    actor = f"prefect:{flow_run.get_flow_name()}/{flow_run.get_name()}"
    promote(name, challenger.version, reason, actor, challenger.metrics, before)
    return tracking.alias_version(name, CHAMPION)


@contextmanager
def _run_scope(config: str, overrides: dict[str, Any] | None) -> Iterator[None]:
    """One run: its overrides in the params file while it lasts (typed by the config model;
    a bad one is refused before anything is written) and the file put back after; stopped
    by a signal, the pipeline (`dvc.lock`, outputs, metrics) is rolled back to its start."""
    typed = typed_overrides(Path(config), overrides)
    with versioning.run_params(Path(config), typed) as restore:
        state = versioning.snapshot()
        started, finished = threading.Lock(), threading.Event()

        def roll_back() -> None:  # once: here, or from the main thread if this one hangs
            if not started.acquire(blocking=False):
                finished.wait(timeout=3.0)  # the other thread is at it: let it finish
                return
            try:
                log.warning("stopped: putting the pipeline back as it was when the run started")
                restore()
                versioning.roll_back(state)
            finally:
                finished.set()

        unregister = runtime.on_stop(roll_back)
        try:
            yield
        except BaseException:
            if runtime.STOP.is_set():
                roll_back()
            raise
        finally:
            unregister()


def _load(config: str, project: str) -> tuple[PipelineConfig, ProjectConfig]:
    return load_pipeline_config(Path(config)), load_project_config(Path(project))


def _check_layout(config: str) -> None:
    if not Path("dvc.yaml").exists():
        raise FileNotFoundError(f"no dvc.yaml in {os.getcwd()}: run flows from the project root")
    if Path(config) != DEFAULT_PIPELINE_CONFIG:
        raise ValueError(f"dvc.yaml reads {DEFAULT_PIPELINE_CONFIG}; got config={config!r}")


def _registry_steps(cfg: PipelineConfig, project: ProjectConfig) -> dict[str, Any]:
    log = get_run_logger()
    runtime.check_not_stopping("register")
    challenger = register_task(cfg, project)
    runtime.check_not_stopping("gate")
    passed, summary, before = gate_task(cfg, project, challenger)
    champion = tracking.alias_version(project.registered_model_name, CHAMPION)
    if passed and cfg.gate.approval == "auto":
        runtime.check_not_stopping("promote")
        champion = promote_task(project, challenger, f"gate (auto): {summary}", before)
    elif passed:
        log.info(
            "gate passed; approval is manual: python -m pipelines promote --version %d "
            "--reason '...'",
            challenger.version,
        )
    if challenger.orphaned:
        log.warning(registry.orphans_line(challenger.orphaned))
    return {
        "version": challenger.version,
        "reused": challenger.reused,
        "orphaned": list(challenger.orphaned),
        "gate": summary,
        "promoted": passed and cfg.gate.approval == "auto",
        "champion": champion,
        "metrics": challenger.metrics,
        "champion_metrics_before": before,
    }


@flow(name="fraud-training", log_prints=True)
def training_flow(
    config: str = str(DEFAULT_PIPELINE_CONFIG),
    overrides: dict[str, Any] | None = None,
    project: str = str(DEFAULT_PROJECT_CONFIG),
) -> dict[str, Any]:
    """Every DVC stage in `dvc.yaml` order, then register, gate and promote."""
    _check_layout(config)
    with _run_scope(config, overrides):
        cfg, identity = _load(config, project)
        for stage in versioning.stage_names():
            run_stage.with_options(name=stage)(stage)
        return _registry_steps(cfg, identity)


@flow(name="fraud-data")
def data_flow(
    config: str = str(DEFAULT_PIPELINE_CONFIG), overrides: dict[str, Any] | None = None
) -> None:
    """The data stages only: generate, validate, features, materialize."""
    _check_layout(config)
    with _run_scope(config, overrides):
        _load(config, str(DEFAULT_PROJECT_CONFIG))
        for stage in DATA_STAGES:
            run_stage.with_options(name=stage)(stage)


@flow(name="fraud-lifecycle", log_prints=True)
def lifecycle_flow(
    config: str = str(DEFAULT_PIPELINE_CONFIG),
    overrides: dict[str, Any] | None = None,
    project: str = str(DEFAULT_PROJECT_CONFIG),
) -> dict[str, Any]:
    """Data, then training, then the registry: the whole offline lifecycle."""
    _check_layout(config)
    with _run_scope(config, overrides):
        data_flow(config, None)
        result = training_flow(config, None, project)
    versioning.push()
    return result
