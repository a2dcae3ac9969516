"""Scoring: raw transactions -> online features -> model -> scores, captured off the path."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipelines.config import Features
from pipelines.features import feature_columns
from serving.capture import CaptureWriter
from serving.features import epoch_us, feature_matrix, feature_row, spans
from serving.metrics import Metrics
from serving.model import LoadedModel, ModelHolder
from serving.schemas import Score, Transaction
from serving.store import Event, Store


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
        self._spans = spans(features)
        self._names = feature_columns(features)

    def score(self, txs: list[Transaction]) -> tuple[LoadedModel, list[Score]]:
        """Score `txs` with one model version; every score names that version."""
        model = self.holder.current  # one reference for the whole request
        events = [
            Event(
                t.transaction_id, t.customer_id, t.terminal_id, epoch_us(t.tx_datetime), t.tx_amount
            )
            for t in txs
        ]
        histories = self.store.add_and_read(events, self._spans)
        rows = [
            feature_row(t.tx_datetime, e.ts_us, t.tx_amount, h, self._cfg)
            for t, e, h in zip(txs, events, histories, strict=True)
        ]
        probabilities = model.score(feature_matrix(rows))
        scores = [
            Score(
                transaction_id=t.transaction_id,
                fraud_probability=float(p),
                is_fraud=bool(p >= model.threshold),
                model_version=model.version,
            )
            for t, p in zip(txs, probabilities, strict=True)
        ]
        for p in probabilities:
            self.metrics.scores.observe(float(p))
        self._capture(txs, rows, scores, model)
        return model, scores

    def _capture(
        self,
        txs: list[Transaction],
        rows: list[list[float]],
        scores: list[Score],
        model: LoadedModel,
    ) -> None:
        now = dt.datetime.now(dt.UTC).isoformat()
        records: list[dict[str, Any]] = [
            {
                "captured_at": now,
                **t.model_dump(mode="json"),
                "features": dict(zip(self._names, row, strict=True)),
                "fraud_probability": s.fraud_probability,
                "is_fraud": s.is_fraud,
                "model_name": model.name,
                "model_version": model.version,
            }
            for t, row, s in zip(txs, rows, scores, strict=True)
        ]
        before = self.capture.dropped
        self.capture.submit(records)
        if self.capture.dropped > before:
            self.metrics.capture_dropped.inc(self.capture.dropped - before)
