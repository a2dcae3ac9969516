"""Scoring: raw transactions -> online features -> model -> scores, captured off the path.

A request is handled as whole arrays: the store aggregates every window of the batch in one
go, the features are assembled with NumPy, and capture records are built by the capture
thread, not on the request path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipelines.config import Features
from pipelines.features import feature_columns
from serving.capture import CaptureWriter
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

    @property
    def decisions(self) -> NDArray[np.bool_]:
        """Fraud probability at or above the model's threshold."""
        return np.asarray(self.probabilities >= self.model.threshold)


@dataclass(frozen=True)
class _Captured:
    """One request's capture, turned into records by the capture thread."""

    captured_at: str
    txs: list[Transaction]
    features: NDArray[np.float64]
    scored: Scored
    names: list[str]

    def __len__(self) -> int:
        return len(self.txs)

    def records(self) -> list[dict[str, Any]]:
        """One record per transaction: the request's fields (`Transaction.model_dump` order;
        the JSON writer renders the datetime as pydantic does), features, score, model."""
        model, names, now = self.scored.model, self.names, self.captured_at
        return [
            {
                "captured_at": now,
                "transaction_id": t.transaction_id,
                "tx_datetime": t.tx_datetime,
                "customer_id": t.customer_id,
                "terminal_id": t.terminal_id,
                "tx_amount": t.tx_amount,
                "features": dict(zip(names, row, strict=True)),
                "fraud_probability": p,
                "is_fraud": d,
                "model_name": model.name,
                "model_version": model.version,
            }
            for t, row, p, d in zip(
                self.txs,
                self.features.tolist(),
                self.scored.probabilities.tolist(),
                self.scored.decisions.tolist(),
                strict=True,
            )
        ]


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
            np.fromiter((tx.transaction_id for tx in txs), dtype=np.int64, count=n),
            np.fromiter((tx.customer_id for tx in txs), dtype=np.int64, count=n),
            np.fromiter((tx.terminal_id for tx in txs), dtype=np.int64, count=n),
            epoch_us([tx.tx_datetime for tx in txs]),
            np.fromiter((tx.tx_amount for tx in txs), dtype=np.float64, count=n),
            np.zeros(n, dtype=np.int64),
        )
        agg = self.store.add_and_read(events)
        x = feature_matrix(events.ts_us, events.amount, agg, self._cfg)
        scored = Scored(model, model.score(x))
        observe_many(self.metrics.scores, scored.probabilities)
        now = dt.datetime.now(dt.UTC).isoformat()
        dropped = self.capture.submit_lazy(_Captured(now, txs, x, scored, self._names))
        if dropped:
            self.metrics.capture_dropped.inc(dropped)
        return scored
