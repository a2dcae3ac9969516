"""`make tune`: an Optuna search over the prequential folds, proposed as a change of the config.

A trial fits the configured estimator, with the hyper-parameters it suggests, on every fold's
training block and scores the fold's test block without the cards already known to be
compromised, as `evaluate` does; its value is the mean average precision over the folds
(`prequential.average_precision.mean` in metrics/evaluate.json). After each fold it reports
the mean so far, and the median pruner stops a trial that trails the median of the other
trials at the same fold: the last report is the trial's value, so pruning judges what is
optimised. The configured hyper-parameters are the first trial of a new study, so the best
is never worse than what the config holds, and the two are compared.

The study lives in an SQLite file (`train.tuning.storage`) under a name made of the estimator
and a hash of its search space, its other hyper-parameters, the features and the folds: a
rerun continues it and its trials add up; another space or protocol starts another study.
Each trial is saved when it ends, so a killed run loses only the trials it was running. Each
trial is an MLflow run nested under one parent run per `make tune` (`pipelines/tracking.py`).
Nothing is applied: the best hyper-parameters become a diff of the config to review.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc

from pipelines import tracking
from pipelines.config import PipelineConfig, Train
from pipelines.coverage import resolve_folds
from pipelines.errors import DataContractError, FraudOpsError
from pipelines.schema import feature_columns
from pipelines.search import (
    FoldData,
    cut_folds,
    fold_scores,
    search_space,
    space_ranges,
    study_name,
)
from pipelines.train import load_folds

log = logging.getLogger(__name__)

STATE = "fraudops.trial_state"  # COMPLETE | PRUNED | FAIL, on each trial's MLflow run


class TuningError(FraudOpsError):
    """The study cannot be opened or run; the trials it finished are kept."""


def objective(cfg: Train, data: list[FoldData], experiment: str, parent: str) -> Any:
    """The trial function: mean AP over the folds, reported fold by fold, pruned early."""

    def run(trial: optuna.Trial) -> float:
        params = {**cfg.estimator_params(), **search_space(trial, cfg.estimator)}
        tags = {"fraudops.kind": "trial", "optuna.trial": str(trial.number)}
        run_id = tracking.start_run(experiment, f"trial-{trial.number}", tags, params, parent)
        started, scores = time.perf_counter(), list[float]()
        try:
            for step, (index, ap) in enumerate(fold_scores(cfg, params, data)):
                scores.append(ap)
                mean = float(np.mean(scores))
                metrics = {"fold.average_precision": ap, "mean.average_precision": mean}
                tracking.log_metrics(run_id, metrics, step=index)
                trial.report(mean, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"mean AP {mean:.4f} after {step + 1} folds")
        except optuna.TrialPruned as pruned:
            done = {STATE: "PRUNED", "fraudops.folds_run": str(len(scores))}
            tracking.end_run(run_id, "KILLED", done)
            log.info("tune: trial %d pruned: %s", trial.number, pruned)
            raise
        except BaseException:
            tracking.end_run(run_id, "FAILED", {STATE: "FAIL"})
            raise
        tracking.end_run(run_id, "FINISHED", {STATE: "COMPLETE"})
        seconds = time.perf_counter() - started
        log.info("tune: trial %d: mean AP %.4f in %.0f s", trial.number, mean, seconds)
        return mean

    return run


def open_study(cfg: Train, name: str, pruner: optuna.pruners.BasePruner | None) -> optuna.Study:
    """The study `name` in the SQLite file of `train.tuning.storage`, created or continued."""
    tuning = cfg.tuning
    pruner = pruner or optuna.pruners.MedianPruner(
        n_startup_trials=tuning.pruner_startup_trials, n_warmup_steps=tuning.pruner_warmup_folds
    )
    try:
        tuning.storage.parent.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(
            storage=f"sqlite:///{tuning.storage.resolve()}",
            study_name=name,
            direction="maximize",
            pruner=pruner,
            load_if_exists=True,
        )
    except (OSError, optuna.exceptions.OptunaError, sqlalchemy.exc.SQLAlchemyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TuningError(f"{tuning.storage}: cannot open the study: {first}") from None
    # Seeded by the trials already run: a resumed study must not repeat its first samples.
    study.sampler = optuna.samplers.TPESampler(seed=tuning.seed + len(study.trials))
    return study


def enqueue_configured(study: optuna.Study, cfg: Train) -> dict[str, Any] | None:
    """Queue the configured hyper-parameters as a trial unless the study has run them
    (or one lies outside the search space); return the searched part of them."""
    ranges = space_ranges(cfg.estimator)
    configured = {k: v for k, v in cfg.estimator_params().items() if k in ranges}
    inside = all(
        isinstance(v, int | float) and ranges[k][0] <= v <= ranges[k][1]
        for k, v in configured.items()
    )
    if not inside:
        log.info("tune: the configured %s lie outside the search space", configured)
        return None
    # Trials store Optuna's unrounded values: compare what they fitted (a written-back best).
    if not any(replayed(t, cfg.estimator) == configured for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial(configured, skip_if_exists=True)
    return configured


def replayed(trial: optuna.trial.FrozenTrial, estimator: str) -> dict[str, Any] | None:
    """The searched hyper-parameters `trial` fitted, or None if it has not all of them yet
    (a queued trial, or one that failed while suggesting)."""
    if trial.state == optuna.trial.TrialState.FAIL:
        return None
    try:
        return search_space(optuna.trial.FixedTrial(trial.params), estimator)
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one `make tune` did, and the study's best trial so far."""

    study: str
    storage: Path
    parent_run_id: str
    states: dict[str, int]  # this run's trials by state (COMPLETE, PRUNED, FAIL, ...)
    total: int  # trials in the study, every run's
    best_number: int
    best_value: float
    best_params: dict[str, Any]  # the searched hyper-parameters, as the config writes them
    configured_value: float | None  # the configured ones' mean AP, if the study ran them


def summarise(
    study: optuna.Study, cfg: Train, first: int, configured: dict[str, Any] | None
) -> Outcome:
    """The outcome of trials `first`.. of `study` and its best finished trial."""
    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for trial in trials[first:]:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise TuningError(
            f"tune: no trial of study {study.study_name} has finished (all pruned or failed): "
            "raise train.tuning.timeout_s or train.tuning.n_trials"
        )
    best = max(done, key=lambda t: float(t.value or 0.0))
    ran = {t.number: replayed(t, cfg.estimator) or {} for t in done}
    same = [t for t in done if ran[t.number] == configured]
    return Outcome(
        study=study.study_name,
        storage=cfg.tuning.storage,
        parent_run_id="",
        states=states,
        total=len(trials),
        best_number=best.number,
        best_value=float(best.value or 0.0),
        best_params=ran[best.number],
        configured_value=float(same[0].value or 0.0) if same else None,
    )


def tune(
    cfg: PipelineConfig, experiment: str, pruner: optuna.pruners.BasePruner | None = None
) -> Outcome:
    """Run `train.tuning.n_trials` more trials (within `timeout_s`) of the study of `cfg`."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line of ours per trial instead
    if not cfg.paths.features.exists():
        raise DataContractError(f"tune: no features at {cfg.paths.features}: run `make run` first")
    all_folds = resolve_folds(cfg)
    frame = load_folds(cfg.paths.features, all_folds)
    data = cut_folds(frame, all_folds, feature_columns(cfg.features))
    del frame
    name = study_name(cfg.train, cfg.features.model_dump(mode="json"), all_folds)
    study = open_study(cfg.train, name, pruner)
    first = len(study.trials)
    configured = enqueue_configured(study, cfg.train)
    experiment_id = tracking.configure(experiment)
    tags = {
        "fraudops.kind": "hyper-parameter search",
        "fraudops.study": name,
        "fraudops.storage": str(cfg.train.tuning.storage),
    }
    parent = tracking.start_run(experiment_id, f"tune-{name}", tags)
    tuning = cfg.train.tuning
    try:
        study.optimize(
            objective(cfg.train, data, experiment_id, parent),
            n_trials=tuning.n_trials,
            timeout=tuning.timeout_s,
            n_jobs=tuning.n_jobs,
        )
        outcome = summarise(study, cfg.train, first, configured)
    except KeyboardInterrupt:
        tracking.end_run(parent, "KILLED")
        ended = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
        kept = sum(t.state in ended for t in study.get_trials(deepcopy=False)[first:])
        raise TuningError(
            f"tune: interrupted; study {name} in {tuning.storage} keeps this run's {kept} "
            "finished trials: rerun `make tune` to continue it"
        ) from None
    except BaseException:
        tracking.end_run(parent, "FAILED")
        raise
    tracking.log_metrics(parent, {"best.mean.average_precision": outcome.best_value})
    tracking.end_run(parent, "FINISHED", {"fraudops.best_trial": str(outcome.best_number)})
    return dataclasses.replace(outcome, parent_run_id=parent)
