"""Scoring: raw transactions -> online features -> model -> scores, captured off the path.

A request is handled as whole arrays: the store aggregates every window of the batch in one
go, the features are assembled with NumPy, and the capture line is encoded by the capture
thread, not on the request path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from pipelines.config import Features
from pipelines.schema import feature_columns
from serving.capture import CaptureWriter, encode
from serving.features import epoch_us, feature_matrix, windows
from serving.metrics import Metrics, observe_many
from serving.model import LoadedModel, ModelHolder
from serving.schemas import Transaction
from serving.store import Events, Store


@dataclass(frozen=True)
class Scored:
    """The scores of one request, all by one model version, in request order."""

    model: LoadedModel
    probabilities: NDArray[np.float64]

    @cached_property
    def decisions(self) -> NDArray[np.bool_]:
        """Fraud probability at or above the model's threshold."""
        return np.asarray(self.probabilities >= self.model.threshold)


@dataclass(frozen=True)
class _Captured:
    """One request's capture, encoded by the capture thread (serving/capture.py)."""

    captured_at: str
    events: Events
    features: NDArray[np.float64]
    scored: Scored
    names: list[str]

    def __len__(self) -> int:
        return len(self.events)

    def line(self) -> bytes:
        """The request as one log line: its values in columns, features by name."""
        e, model = self.events, self.scored.model
        by_feature = np.ascontiguousarray(self.features.T)  # orjson writes C-ordered arrays
        return encode(
            {
                "captured_at": self.captured_at,
                "model_name": model.name,
                "model_version": model.version,
                "transaction_id": e.transaction_id,
                "tx_datetime": e.ts_us.astype("datetime64[us]"),
                "customer_id": e.customer_id,
                "terminal_id": e.terminal_id,
                "tx_amount": e.amount,
                "features": dict(zip(self.names, by_feature, strict=True)),
                "fraud_probability": self.scored.probabilities,
                "is_fraud": self.scored.decisions,
            }
        )


class Scorer:
    """Everything one request needs, built once at start-up."""

    def __init__(
        self,
        store: Store,
        holder: ModelHolder,
        capture: CaptureWriter,
        metrics: Metrics,
        features: Features,
    ) -> None:
        self.store, self.holder, self.capture, self.metrics = store, holder, capture, metrics
        self._cfg = features
        self.windows = windows(features)
        self._names = feature_columns(features)

    def score(self, txs: list[Transaction]) -> Scored:
        """Score `txs` with one model version; every score names that version."""
        model = self.holder.current  # one reference for the whole request
        n = len(txs)
        events = Events(
            np.fromiter((tx["transaction_id"] for tx in txs), dtype=np.int64, count=n),
            np.fromiter((tx["customer_id"] for tx in txs), dtype=np.int64, count=n),
            np.fromiter((tx["terminal_id"] for tx in txs), dtype=np.int64, count=n),
            epoch_us([tx["tx_datetime"] for tx in txs]),
            np.fromiter((tx["tx_amount"] for tx in txs), dtype=np.float64, count=n),
            np.zeros(n, dtype=np.int64),
        )
        agg = self.store.add_and_read(events)
        x = feature_matrix(events.ts_us, events.amount, agg, self._cfg)
        scored = Scored(model, model.score(x))
        observe_many(self.metrics.scores, scored.probabilities)
        now = dt.datetime.now(dt.UTC).isoformat()
        dropped = self.capture.submit_batch(_Captured(now, events, x, scored, self._names))
        if dropped:
            self.metrics.capture_dropped.inc(dropped)
        return scored
