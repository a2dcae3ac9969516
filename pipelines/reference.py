"""The reference window for monitoring: what the model saw when it was evaluated.

A seeded sample of the latest fold's whole test block (every transaction, as the service
sees them, not only the rows the handbook's metrics keep): the model's features, its score,
the label and the time. Its metadata names the model file it belongs to (md5) and the
reference quality the monitoring loop compares production windows with. The `register`
step logs both files with the model version, so monitoring always compares a champion with
its own reference.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.metrics import average_precision_score

from pipelines import schema
from pipelines.evaluate import score
from pipelines.train import Fold

SCORE = "score"
FRAME = "reference.parquet"
META = "reference.json"


@dataclass(frozen=True)
class ReferenceMeta:
    """Which model and window the reference describes, and its quality there."""

    model_md5: str
    start: str
    end: str
    rows: int
    block_rows: int
    frauds: int
    average_precision: float
    threshold: float


def file_md5(path: Path) -> str:
    """md5 of a file's bytes (the model file a reference belongs to)."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_reference(
    model: ClassifierMixin,
    block: pd.DataFrame,
    features: list[str],
    fold: Fold,
    threshold: float,
    sample_rows: int,
    seed: int,
    model_md5: str,
) -> tuple[pd.DataFrame, ReferenceMeta]:
    """Score the whole test block, then keep a seeded sample of at most `sample_rows` rows."""
    keep = [schema.TRANSACTION_ID, schema.TX_DATETIME, *features, schema.TX_FRAUD]
    total = len(block)
    if total > sample_rows:
        picks = np.sort(np.random.default_rng(seed).choice(len(block), sample_rows, replace=False))
        block = block.iloc[picks]
    frame = block[keep].reset_index(drop=True)
    frame[SCORE] = score(model, frame, features)
    labels = frame[schema.TX_FRAUD].to_numpy()
    ap = float(average_precision_score(labels, frame[SCORE])) if labels.any() else float("nan")
    meta = ReferenceMeta(
        model_md5=model_md5,
        start=fold.test_start.isoformat(),
        end=fold.test_end.isoformat(),
        rows=len(frame),
        block_rows=total,
        frauds=int(labels.sum()),
        average_precision=ap,
        threshold=threshold,
    )
    return frame, meta


def meta_dict(meta: ReferenceMeta) -> dict[str, object]:
    """The metadata as a JSON-ready dict."""
    return asdict(meta)
