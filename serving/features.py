"""Online features: the offline definitions (pipelines/features.py), computed per request.

Same windows, same edges: a customer window of w days is (t - w, t]; a terminal window is
(t - d - w, t - d] with d the label delay (with d = 0, transactions at t itself are left
out, as offline). The parity test replays a day through the API and compares with the
offline stage to 1e-9.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math

import numpy as np
from numpy.typing import NDArray

from pipelines.config import Features
from pipelines.features import DAY_US
from serving.store import History, Spans


def epoch_us(when: dt.datetime) -> int:
    """Microseconds since the epoch of a naive UTC datetime (exact integer arithmetic)."""
    return calendar.timegm(when.timetuple()) * 1_000_000 + when.microsecond


def spans(cfg: Features) -> Spans:
    """How far back the store must read for these feature definitions."""
    d = cfg.label_delay_days
    # A group configured without windows reads nothing (an empty span).
    return Spans(
        customer_us=max(cfg.customer_windows_days, default=0) * DAY_US,
        terminal_from_us=(d + max(cfg.terminal_windows_days, default=0)) * DAY_US,
        terminal_to_us=d * DAY_US if d > 0 else 1,
    )


def feature_row(
    when: dt.datetime, t: int, amount: float, history: History, cfg: Features
) -> list[float]:
    """The model's input row, in `feature_columns(cfg)` order (`t`: `epoch_us(when)`)."""
    row = [amount, float(when.weekday() >= 5), float(when.hour <= cfg.night_max_hour)]
    cts, camt = history.customer_ts, history.customer_amount
    for w in cfg.customer_windows_days:
        inside = cts > t - w * DAY_US
        n = int(inside.sum())
        mean = math.fsum(camt[inside]) / n if n else 0.0
        row += [float(n), mean, amount / mean if mean > 0 else 1.0]
    d = cfg.label_delay_days
    upper = t - d * DAY_US if d > 0 else t - 1
    tts, fraud = history.terminal_ts, history.terminal_fraud
    for w in cfg.terminal_windows_days:
        inside = (tts > t - (d + w) * DAY_US) & (tts <= upper)
        n = int(inside.sum())
        row += [float(n), float(fraud[inside].sum()) / n if n else 0.0]
    return row


def feature_matrix(rows: list[list[float]]) -> NDArray[np.float64]:
    """Rows stacked into the model's input matrix."""
    return np.asarray(rows, dtype=np.float64)
