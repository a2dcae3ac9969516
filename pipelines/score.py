"""`python -m pipelines score`: batch transform. Score a file of transactions with a
registered version, offline, with the features the `features` stage defines.

The file is read in the configured source shape (`source:`: column map, timestamps, string
ids, declared columns), checked as `validate` checks (bad rows go to a quarantine file beside
the output, counted, never dropped silently), and its features are computed point in time by
the same SQL as the `features` stage. A transaction's windows hold the file's own earlier
transactions; with `history`, also the project's clean data (`paths.clean`) before and
around them, so a day scored in batch gets the features and scores it gets from the service
when replayed in order. Not a DVC stage: a file scored on demand is no pipeline output.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines import reasons as explaining
from pipelines import schema, tracking
from pipelines.config import PipelineConfig, ProjectConfig
from pipelines.errors import DataContractError, FraudOpsError
from pipelines.features import build_features
from pipelines.io import atomic_path, read_table, remove_outputs, write_parquet
from pipelines.source import load_source
from pipelines.validate import validate_transactions

log = logging.getLogger(__name__)

CHAMPION = "champion"
REASONS = explaining.TOP  # the contributions written with each score
CHUNK = 50_000  # rows explained at a time (a task of a worker process): rows x features floats


class ScoringError(FraudOpsError):
    """No model to score with, or one that expects other features."""


@dataclass(frozen=True)
class BatchScores:
    """What `score_file` wrote."""

    output: Path
    rows: int
    quarantined: int
    quarantine: Path | None
    version: int
    flagged: int
    reasons: int
    method: explaining.Method | None


def quarantine_path(output: Path) -> Path:
    """Where the rows of the input that break the contract are kept, with their reasons."""
    return output.with_name(f"{output.stem}.quarantine.parquet")


def read_input(cfg: PipelineConfig, path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The file's clean rows and its quarantined ones (with reasons), as `validate` splits."""
    source = cfg.source.model_copy(update={"kind": "file", "path": path})
    declared = cfg.features.columns
    raw = load_source(source, [c.name for c in declared])
    result = validate_transactions(raw, cfg.validate_, declared)
    if result.clean.empty:
        raise DataContractError(f"{path}: no row passes the contract ({len(raw)} quarantined)")
    return result.clean, result.quarantine


def with_history(cfg: PipelineConfig, clean: pd.DataFrame) -> pd.DataFrame:
    """`clean` with the project's clean transactions its windows reach (from `reach_days`
    before the first one to the last one; the file's rows win over the same ids)."""
    history = read_table(cfg.paths.clean)
    first, last = clean[schema.TX_DATETIME].min(), clean[schema.TX_DATETIME].max()
    since = first - pd.Timedelta(days=schema.reach_days(cfg.features))
    times = history[schema.TX_DATETIME]
    keep = (times > since) & (times <= last)
    keep &= ~history[schema.TRANSACTION_ID].isin(clean[schema.TRANSACTION_ID])
    columns = list(schema.raw_columns(cfg.features.columns))
    both: pd.DataFrame = pd.concat([clean[columns], history.loc[keep, columns]], ignore_index=True)
    return both


def features_of(cfg: PipelineConfig, rows: pd.DataFrame) -> pd.DataFrame:
    """The `features` stage's features of `rows` (the same SQL, through a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="fraudops-score-") as tmp:
        write_parquet(rows, Path(tmp) / "clean.parquet")
        build_features(Path(tmp) / "clean.parquet", Path(tmp) / "features.parquet", cfg.features)
        features: pd.DataFrame = read_table(Path(tmp) / "features.parquet")
    return features


def champion_or(name: str, version: int | None) -> int:
    """`version`, or the one alias `champion` points at."""
    if version is not None:
        return version
    found = tracking.alias_version(name, CHAMPION)
    if found is None:
        raise ScoringError(
            f"score: {name} has no {CHAMPION} at MLflow {tracking.tracking_uri()}: "
            "run `make run` (or pass --version)"
        )
    return found


def score_file(
    cfg: PipelineConfig,
    project: ProjectConfig,
    input_path: Path,
    output: Path,
    version: int | None = None,
    history: bool = False,
    reasons: int = REASONS,
    method: explaining.Method = "exact",
) -> BatchScores:
    """Score `input_path` into `output` (parquet, or CSV by its suffix): per transaction its
    id, time, fraud probability, decision at the version's threshold, the version, and its
    `reasons` largest feature contributions (`reason_1`, `contribution_1`, ...; none if 0)."""
    quarantined_at = quarantine_path(output)
    remove_outputs(output, quarantined_at)  # a failed run leaves no earlier scores behind
    name = project.registered_model_name
    tracking.connect()
    chosen = champion_or(name, version)
    model, metadata = tracking.load_model(name, chosen)
    names = schema.feature_columns(cfg.features)
    expected = list(metadata.get("features", []))
    if expected != names:
        raise ScoringError(
            f"score: {name} version {chosen} expects features {expected}; "
            f"configs/pipeline.yaml declares {names}"
        )
    clean, quarantine = read_input(cfg, input_path)
    rows = with_history(cfg, clean) if history else clean
    features = features_of(cfg, rows)  # sorted by transaction id
    scored = features[features[schema.TRANSACTION_ID].isin(clean[schema.TRANSACTION_ID])]
    x = scored[names].to_numpy(np.float64)
    threshold = float(metadata.get("threshold", 0.5))
    p = model.predict_proba(pd.DataFrame(x, columns=names))[:, 1]
    out = pd.DataFrame(
        {
            schema.TRANSACTION_ID: scored[schema.TRANSACTION_ID].to_numpy(np.int64),
            schema.TX_DATETIME: scored[schema.TX_DATETIME].to_numpy("datetime64[us]"),
            "fraud_probability": p,
            "is_fraud": p >= threshold,
            "model_version": np.full(len(p), chosen, dtype=np.int64),
        }
    )
    if reasons > 0:
        out = out.assign(**explained(model, x, names, reasons, method))
    _write(out, output)
    if len(quarantine):
        write_parquet(quarantine, quarantined_at)
        log.warning(
            "score: %d row(s) of %s break the contract: kept with their reasons in %s",
            len(quarantine),
            input_path,
            quarantined_at,
        )
    done = BatchScores(
        output,
        len(out),
        len(quarantine),
        quarantined_at if len(quarantine) else None,
        chosen,
        int(out["is_fraud"].sum()),
        min(reasons, len(names)),
        method if reasons > 0 else None,
    )
    log.info(
        "score: %d transaction(s) of %s scored by %s version %d at %s (%d flagged) -> %s",
        done.rows,
        input_path,
        name,
        chosen,
        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        done.flagged,
        output,
    )
    return done


def explained(
    model: object, x: np.ndarray, names: list[str], k: int, method: explaining.Method
) -> dict[str, np.ndarray]:
    """The columns `reason_i` (a feature's name) and `contribution_i` (its contribution to
    the raw score) of the `k` largest contributions of each row, by magnitude."""
    explainer = explaining.Explainer(model, len(names))
    chunks = [x[i : i + CHUNK] for i in range(0, len(x), CHUNK)]
    jobs = min(len(chunks), usable_cores())
    if jobs > 1:  # shap holds the GIL: one process per core (joblib's loky), each its own
        from joblib import Parallel, delayed

        parts = Parallel(n_jobs=jobs)(
            delayed(_top_of)(model, chunk, names, k, method) for chunk in chunks
        )
    else:
        parts = [explaining.top(explainer.contributions(c, method), names, k) for c in chunks]
    features = np.concatenate([part.features for part in parts])
    values = np.concatenate([part.contributions for part in parts])
    columns: dict[str, np.ndarray] = {}
    for i in range(features.shape[1]):
        columns[f"reason_{i + 1}"] = features[:, i].astype(object)
        columns[f"contribution_{i + 1}"] = values[:, i]
    log.info(
        "score: %d reason(s) per row (%s, contributions to the %s; base %.4f)",
        features.shape[1],
        method,
        explainer.output.replace("_", "-"),
        explainer.base,
    )
    return columns


def _top_of(
    model: object, x: np.ndarray, names: list[str], k: int, method: explaining.Method
) -> explaining.Reasons:
    """One chunk's reasons, in a worker process (its own explainer)."""
    contributions = explaining.Explainer(model, len(names)).contributions(x, method)
    return explaining.top(contributions, names, k)


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _write(frame: pd.DataFrame, output: Path) -> None:
    if output.suffix.lower() != ".csv":
        write_parquet(frame, output)
        return
    with atomic_path(output) as tmp:
        frame.to_csv(tmp, index=False)
