"""Feedback: labelled production transactions written where the `generate` stage reads them.

Captured predictions (the service's inputs) joined with their labels become raw
transactions again (scenario 0: unknown), so a retrain sees the production period. Rows
without a label yet are left out: their outcome is not known.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monitoring import labels
from pipelines import schema
from pipelines.io import write_parquet

if TYPE_CHECKING:
    from pipelines.config import DeclaredColumn

log = logging.getLogger(__name__)

FILE = "production.parquet"
EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class Feedback:
    """What was fed back: labelled rows and the days they span."""

    rows: int
    first_day: dt.date | None
    last_day: dt.date | None

    @property
    def days(self) -> int:
        if self.first_day is None or self.last_day is None:
            return 0
        return (self.last_day - self.first_day).days + 1


def export(
    capture_dir: Path,
    label_files: list[Path] | None,
    out_dir: Path,
    declared: Sequence[DeclaredColumn] = (),
) -> Feedback:
    """Write every labelled captured transaction to `out_dir/production.parquet`, with the
    declared columns (`features.columns`) of its request."""
    window, _, _ = labels.join(capture_dir, label_files, start=EPOCH, declared=declared)
    labelled = window[window[schema.TX_FRAUD].notna()] if len(window) else window
    if labelled.empty:
        return Feedback(0, None, None)
    dtypes = schema.raw_dtypes(declared)
    raw = (
        labelled.assign(**{schema.TX_FRAUD_SCENARIO: 0})[list(dtypes)]
        .astype(dtypes)
        .sort_values([schema.TX_DATETIME, schema.TRANSACTION_ID], ignore_index=True)
    )
    write_parquet(raw, out_dir / FILE)
    days = raw[schema.TX_DATETIME].dt.date
    found = Feedback(len(raw), days.min(), days.max())
    log.info("feedback: %d labelled rows over %d days -> %s", found.rows, found.days, out_dir)
    return found


def retrain_start(feedback: Feedback, train_days: int, delay_days: int, test_days: int) -> dt.date:
    """`train.start_date` that ends the latest test block on the last labelled day."""
    assert feedback.last_day is not None
    span = train_days + delay_days + test_days
    return feedback.last_day - dt.timedelta(days=span - 1)


def enough(feedback: Feedback, train_days: int, delay_days: int, test_days: int) -> bool:
    """True when the training block (not only the test block) lies in the production period."""
    return feedback.days >= train_days + delay_days + test_days
