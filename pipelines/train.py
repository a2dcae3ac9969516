"""Stage `train`: the handbook's split protocol and the estimator, fitted on the latest fold.

A fold trains on `train_days` from its start, skips `label_delay_days` (labels not known yet
at the end of training), and tests on the next `test_days`. Fold i starts i test blocks
before fold 0, the latest fold. `train.start_date` is fold 0's start (`train.anchor:
latest`) or the start of the earliest fold, K - 1 test blocks before fold 0 (`earliest`);
`auto` is placed on the data's dates by `pipelines/coverage.py`, which also checks that the
data covers every fold. Each block is cut with both classes in it, or stops the run in one line.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipelines import schema
from pipelines.config import Train
from pipelines.errors import DataContractError, ProtocolError

log = logging.getLogger(__name__)

DAY = "day"


@dataclass(frozen=True)
class Fold:
    """The dates of one train / delay / test split (ends exclusive)."""

    index: int
    train_start: dt.date
    test_start: dt.date
    test_end: dt.date
    delay_days: int

    @property
    def train_end(self) -> dt.date:
        return self.test_start - dt.timedelta(days=self.delay_days)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fold": self.index,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
        }


def placed_start(cfg: Train) -> dt.date:
    """`cfg.start_date` as a date: `auto` must have been placed on the data first
    (`coverage.place`, which `coverage.resolve_folds` runs)."""
    if not isinstance(cfg.start_date, dt.date):
        raise ValueError("train.start_date is auto: place the folds with coverage.resolve_folds")
    return cfg.start_date


def folds(cfg: Train, delay_days: int) -> list[Fold]:
    """Fold 0 is the latest; each further fold is one test block earlier. Fold 0 starts at
    `start_date` (anchor `latest`), or the last fold does (anchor `earliest`)."""
    latest = placed_start(cfg)
    if cfg.anchor == "earliest":
        latest += dt.timedelta(days=(cfg.folds - 1) * cfg.test_days)
    out = []
    for i in range(cfg.folds):
        start = latest - dt.timedelta(days=i * cfg.test_days)
        test_start = start + dt.timedelta(days=cfg.train_days + delay_days)
        out.append(
            Fold(i, start, test_start, test_start + dt.timedelta(days=cfg.test_days), delay_days)
        )
    return out


def with_day(features: pd.DataFrame) -> pd.DataFrame:
    """Add the calendar day of each transaction (the unit of the protocol)."""
    return features.assign(**{DAY: features[schema.TX_DATETIME].dt.normalize()})


def _between(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.Series:
    day = frame[DAY]
    return (day >= pd.Timestamp(start)) & (day < pd.Timestamp(end))


def block_dates(start: dt.date, end: dt.date) -> str:
    """The days from `start` to `end` (exclusive), written with both ends inclusive."""
    return f"{start}..{end - dt.timedelta(days=1)}"


def require_both_classes(rows: pd.DataFrame, fold: Fold, block: str) -> pd.DataFrame:
    """`rows` of `block` of `fold`, refused in one line unless both classes occur in them."""
    frauds = int(rows[schema.TX_FRAUD].sum())
    legit = len(rows) - frauds
    if frauds == 0 or legit == 0:
        raise ProtocolError(
            f"train: fold {fold.index}'s {block} has {legit} legitimate and {frauds} "
            "fraudulent transactions; every block needs both classes: lengthen "
            "train.train_days / train.test_days or move train.start_date"
        )
    return rows


def training_block(frame: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    """Transactions of the fold's training block (both classes, or a `ProtocolError`)."""
    rows = frame[_between(frame, fold.train_start, fold.train_end)]
    block = f"training block {block_dates(fold.train_start, fold.train_end)}"
    return require_both_classes(rows, fold, block)


def test_block(frame: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    """Every transaction of the fold's test block (what a service would have scored; both
    classes, or a `ProtocolError`)."""
    rows = frame[_between(frame, fold.test_start, fold.test_end)]
    block = f"test block {block_dates(fold.test_start, fold.test_end)}"
    return require_both_classes(rows, fold, block)


def scoring_block(frame: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    """The test block without cards already known to be compromised on each test day (both
    classes left, or a `ProtocolError`: metrics and thresholds need both).

    A card is known on test day t once one of its frauds from the training start on is at
    least `delay_days` old: a fraud on a day < t - delay (the handbook's rule).
    """
    since = frame[_between(frame, fold.train_start, fold.test_end) & (frame[schema.TX_FRAUD] == 1)]
    first_fraud = since.groupby(schema.CUSTOMER_ID)[DAY].min()
    test = test_block(frame, fold)
    known_from = test[schema.CUSTOMER_ID].map(first_fraud) + pd.Timedelta(days=fold.delay_days)
    known = known_from.notna() & (known_from < test[DAY])
    block = f"test block {block_dates(fold.test_start, fold.test_end)} without known compromised"
    return require_both_classes(test[~known.to_numpy()], fold, f"{block} cards")


def make_estimator(cfg: Train, params: dict[str, Any] | None = None) -> ClassifierMixin:
    """The configured estimator with its hyper-parameters (or `params` from a search)."""
    p = params if params is not None else cfg.estimator_params()
    seed = cfg.random_state
    if cfg.estimator == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(**p, random_state=seed)
    if cfg.estimator == "random_forest":
        return RandomForestClassifier(**p, random_state=seed, n_jobs=-1)
    if cfg.estimator == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(**p, random_state=seed))
    from xgboost import XGBClassifier  # optional heavy import

    return XGBClassifier(**p, random_state=seed, n_jobs=-1, tree_method="hist")


def for_serving(model: ClassifierMixin) -> ClassifierMixin:
    """One thread per prediction: parallel scoring of one row only adds overhead."""
    if hasattr(model, "n_jobs"):
        model.set_params(n_jobs=1)
    return model


def fit(
    cfg: Train, frame: pd.DataFrame, features: list[str], params: dict[str, Any] | None = None
) -> ClassifierMixin:
    """Fit the configured estimator on `frame[features]`."""
    model = make_estimator(cfg, params)
    x = frame[features].astype(np.float64)  # feature names travel with the model
    model.fit(x, frame[schema.TX_FRAUD].to_numpy())
    return for_serving(model)


def load_folds(path: Path, all_folds: list[Fold]) -> pd.DataFrame:
    """Read only the days the folds use from the features file, with their calendar day."""
    start = min(f.train_start for f in all_folds)
    end = max(f.test_end for f in all_folds)
    try:
        frame = pd.read_parquet(
            path,
            filters=[
                (schema.TX_DATETIME, ">=", pd.Timestamp(start)),
                (schema.TX_DATETIME, "<", pd.Timestamp(end)),
            ],
        )
    except (OSError, ValueError) as exc:
        raise DataContractError(f"{path}: cannot read features ({exc})") from None
    frame = with_day(frame)
    for fold in all_folds:  # a block without both classes stops here, before any fit
        training_block(frame, fold)
        test_block(frame, fold)
    return frame
