"""The protocol sized to the data: the days the features file spans, `train.start_date: auto`
placed on them, and the check that every fold's days lie inside them.

`resolve_folds` is the one place the folds of a run are computed from its config and its
data; every stage and step that fits or scores folds calls it, so all of them place fold 0
the same way. (The blocks' classes are checked where they are cut: `train.training_block`,
`train.test_block`, `train.scoring_block`, all run by `train.load_folds`.)
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines import schema
from pipelines.config import PipelineConfig, Train
from pipelines.errors import DataContractError, ProtocolError
from pipelines.schema import reach_days
from pipelines.train import Fold, block_dates, folds, placed_start

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpan:
    """The first and last calendar day with a transaction (both inclusive)."""

    first_day: dt.date
    last_day: dt.date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def data_span(path: Path) -> DataSpan:
    """The days `path` (features, or any file with `tx_datetime`) holds transactions on."""
    try:
        times = pd.read_parquet(path, columns=[schema.TX_DATETIME])[schema.TX_DATETIME]
    except (OSError, ValueError) as exc:
        raise DataContractError(f"{path}: cannot read features ({exc})") from None
    if times.empty:
        raise DataContractError(f"{path}: has no rows")
    return DataSpan(times.min().date(), times.max().date())


def fold_days(cfg: Train, delay_days: int) -> int:
    """Days one fold covers: its training, delay and test blocks."""
    return cfg.train_days + delay_days + cfg.test_days


def place(cfg: Train, delay_days: int, span: DataSpan) -> Train:
    """`cfg` with a date for `start_date`: as configured, or for `auto` the one that ends
    fold 0's test block on the data's last day (anchor `latest`) or starts the earliest fold
    on its first day (anchor `earliest`). The last day counts as a full day."""
    if cfg.start_date != "auto":
        return cfg
    start = span.first_day
    if cfg.anchor == "latest":
        start = span.last_day - dt.timedelta(days=fold_days(cfg, delay_days) - 1)
    return cfg.model_copy(update={"start_date": start})


def _fit_from(earliest: dt.date, span: DataSpan, one: int, step: int) -> int:
    """How many folds, `step` days apart, fit from a fold starting on `earliest` to the
    data's last day (0 when even that fold starts before the data or ends after it)."""
    room = (span.last_day - earliest).days + 1 - one
    if earliest < span.first_day or room < 0:
        return 0
    return room // step + 1


def fitting_folds(cfg: Train, delay_days: int, span: DataSpan) -> int:
    """The largest `train.folds` whose folds all lie in `span`, the start date kept (0: none).

    Anchor `latest` keeps fold 0 and drops the earliest folds; `earliest` the other way."""
    start, one, step = placed_start(cfg), fold_days(cfg, delay_days), cfg.test_days
    if cfg.anchor == "earliest" or _fit_from(start, span, one, step) == 0:
        return _fit_from(start, span, one, step)
    return (start - span.first_day).days // step + 1


def _advice(cfg: Train, placed: Train, delay_days: int, span: DataSpan) -> str:
    """What to set so the protocol fits the data."""
    shorten = "shorten train.train_days / train.test_days"
    here = fitting_folds(placed, delay_days, span)
    if here:
        moved = "" if cfg.start_date == "auto" else ", or move train.start_date"
        return f"set train.folds to {here} or {shorten}{moved}"
    one = fold_days(cfg, delay_days)
    anywhere = _fit_from(span.first_day, span, one, cfg.test_days)  # what `auto` fits
    if anywhere >= cfg.folds:
        return "set train.start_date to auto or move it into the data"
    if anywhere:
        return f"set train.start_date to auto and train.folds to {anywhere}, or {shorten}"
    return f"{shorten} (one fold needs {one} days)"


def check_days(cfg: Train, placed: Train, delay_days: int, span: DataSpan) -> list[Fold]:
    """`placed`'s folds, or a `ProtocolError` when a day of one lies outside `span`."""
    all_folds = folds(placed, delay_days)
    first, end = all_folds[-1].train_start, all_folds[0].test_end  # the earliest, the latest
    if span.first_day <= first and end <= span.last_day + dt.timedelta(days=1):
        return all_folds
    count = f"{cfg.folds} fold{'s' if cfg.folds > 1 else ''}"
    raise ProtocolError(
        f"train: the protocol needs {(end - first).days} days ({count} of "
        f"{cfg.train_days} train + {delay_days} delay + {cfg.test_days} test days, "
        f"{block_dates(first, end)}); the data has {span.days} days "
        f"({span.first_day}..{span.last_day}): " + _advice(cfg, placed, delay_days, span)
    )


def resolve_folds(cfg: PipelineConfig, features: Path | None = None) -> list[Fold]:
    """The run's folds on its features file (`cfg.paths.features` unless given): the start
    date placed (`auto`), every day of every fold checked to lie in the data."""
    delay = cfg.features.label_delay_days
    span = data_span(features or cfg.paths.features)
    placed = place(cfg.train, delay, span)
    all_folds = check_days(cfg.train, placed, delay, span)
    latest = all_folds[0]
    log.info(
        "protocol: train.start_date %s (anchor %s) -> %d folds over %s, fold 0 trains %s and "
        "tests %s; the data has %s..%s",
        cfg.train.start_date,
        cfg.train.anchor,
        len(all_folds),
        block_dates(all_folds[-1].train_start, latest.test_end),
        block_dates(latest.train_start, latest.train_end),
        block_dates(latest.test_start, latest.test_end),
        span.first_day,
        span.last_day,
    )
    _warn_short_history(all_folds, reach_days(cfg.features), span)
    return all_folds


def _warn_short_history(all_folds: list[Fold], reach: int, span: DataSpan) -> None:
    """One warning when the earliest fold trains on transactions whose windows reach back
    before the data starts (their counts and rates are partial): its scores are not
    comparable with later folds'."""
    short = [f for f in all_folds if (f.train_start - span.first_day).days < reach]
    if short:
        log.warning(
            "protocol: fold(s) %s train from %s, %d day(s) after the data starts, while the "
            "feature windows reach %d days back: their windows are partial and their metrics "
            "read low (more data before train.start_date, or fewer train.folds, avoids it)",
            ", ".join(str(f.index) for f in short),
            short[-1].train_start,
            (short[-1].train_start - span.first_day).days,
            reach,
        )
