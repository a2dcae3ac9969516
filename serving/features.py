"""Online features: the offline definitions (pipelines/features.py), computed per request.

Same windows, same edges: a customer window of w days is (t - w, t]; a terminal window is
(t - d - w, t - d] with d the label delay (with d = 0, transactions at t itself are left
out, as offline). The store aggregates each window (counts, sums); this module turns a
batch of aggregates into the model's input matrix with whole-array operations. The parity
test replays a day through the API and compares with the offline stage to 1e-9.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipelines.config import Features
from pipelines.schema import DAY_US, naive_utc, transaction_columns
from serving.store import NO_PREVIOUS, Aggregates, Windows

HOUR_US = 3_600 * 1_000_000
THURSDAY = 3  # 1970-01-01, day 0 of the epoch, as `datetime.weekday()` numbers it


EPOCH = dt.datetime(1970, 1, 1)
MICROSECOND = dt.timedelta(microseconds=1)


def epoch_us(when: list[dt.datetime]) -> NDArray[np.int64]:
    """Microseconds since the epoch (exact integer arithmetic); naive datetimes are UTC."""
    return np.fromiter(
        ((naive_utc(w) - EPOCH) // MICROSECOND for w in when), dtype=np.int64, count=len(when)
    )


def windows(cfg: Features) -> Windows:
    """The windows of these feature definitions, as offsets from the transaction time."""
    d = cfg.label_delay_days
    cp, tp = cfg.customer_since_previous_days, cfg.terminal_since_previous_days
    return Windows(
        customer=tuple((w * DAY_US, 0) for w in cfg.customer_windows_days),
        terminal=tuple(
            ((d + w) * DAY_US, d * DAY_US if d > 0 else 1) for w in cfg.terminal_windows_days
        ),
        # (t - cap, t - 1]: an event at exactly t - cap is cap days back, the value of none.
        customer_previous=(cp * DAY_US, 1) if cp else None,
        terminal_previous=(tp * DAY_US, 1) if tp else None,
    )


def _ratio(
    top: NDArray[np.float64], bottom: NDArray[np.float64], when_zero: float
) -> NDArray[np.float64]:
    """top / bottom where bottom > 0, else `when_zero`."""
    out = np.full(np.broadcast(top, bottom).shape, when_zero)
    np.divide(top, bottom, out=out, where=bottom > 0)
    return out


def declared_matrix(txs: Sequence[Mapping[str, Any]], cfg: Features) -> NDArray[np.float64]:
    """The declared columns' features of `txs` (`features.columns`, in order): a numeric
    column's value, a categorical column's 0/1 flag per declared category."""
    out = np.empty((len(txs), sum(len(c.feature_names()) for c in cfg.columns)))
    j = 0
    for column in cfg.columns:
        if column.kind == "numeric":
            out[:, j] = [tx[column.name] for tx in txs]
            j += 1
            continue
        values = np.array([tx[column.name] for tx in txs], dtype=object)
        for category in column.categories:
            out[:, j] = values == category
            j += 1
    return out


def feature_matrix(
    t: NDArray[np.int64],
    amount: NDArray[np.float64],
    agg: Aggregates,
    cfg: Features,
    declared: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """The model's input rows, columns in `feature_columns(cfg)` order (`t`: `epoch_us`;
    `declared`: `declared_matrix` of the same rows, when `features.columns` declares any)."""
    days, within_day = np.divmod(t, DAY_US)
    weekend = (days + THURSDAY) % 7 >= 5
    hour = within_day // HOUR_US
    night = hour <= cfg.night_max_hour
    kc, kt = len(cfg.customer_windows_days), len(cfg.terminal_windows_days)
    per = 3 if cfg.customer_amount_ratio else 2  # columns per customer window
    tx_end = 3 + len(transaction_columns(cfg))  # first customer column
    end = tx_end + per * kc  # first terminal column
    last = end + 2 * kt  # first days-since-previous column
    caps = (cfg.customer_since_previous_days, cfg.terminal_since_previous_days)
    previous = [
        (cap, found)
        for cap, found in zip(caps, (agg.customer_previous, agg.terminal_previous), strict=True)
        if cap
    ]
    x = np.empty((len(t), last + len(previous)))
    x[:, 0], x[:, 1], x[:, 2] = amount, weekend, night
    j = 3
    if cfg.hour_of_day:
        x[:, j] = hour
        j += 1
    if j < tx_end:
        assert declared is not None, "features.columns are declared: pass their matrix"
        x[:, j:tx_end] = declared
    count = agg.customer_count.astype(np.float64)
    mean = _ratio(agg.customer_amount, count, 0.0)
    x[:, tx_end:end:per] = count
    x[:, tx_end + 1 : end : per] = mean
    if cfg.customer_amount_ratio:
        x[:, tx_end + 2 : end : per] = _ratio(amount[:, None], mean, 1.0)
    n = agg.terminal_count.astype(np.float64)
    x[:, end:last:2] = n
    x[:, end + 1 : last : 2] = _ratio(agg.terminal_fraud.astype(np.float64), n, 0.0)
    for j, (cap, found) in enumerate(previous, start=last):
        assert found is not None, "the store was opened without this previous-event window"
        none = found == NO_PREVIOUS
        since = (t - np.where(none, t, found)).astype(np.float64) / float(DAY_US)
        x[:, j] = np.where(none, float(cap), since)  # / as the SQL divides
    return x
