"""Scoring: raw transactions -> online features -> model -> scores, captured before answering.

A request is handled as whole arrays: the store aggregates every window of the batch in one
go, the features are assembled with NumPy, and the request's capture is one log line.

Idempotent by transaction id (`Store.score`): a transaction answered before gets its first
answer back, and changes nothing in the store or the capture; only the others are scored,
and their capture is durable (serving/capture.py) before the store keeps their answers.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipelines.config import Features
from pipelines.schema import DAY_US, feature_columns
from serving.capture import CaptureLog, encode
from serving.features import declared_matrix, epoch_us, feature_matrix, windows
from serving.metrics import Metrics, observe_many
from serving.model import LoadedModel, ModelHolder
from serving.schemas import Transaction
from serving.store import Aggregates, Answers, Events, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """The answers of one request, in request order. `version`: the model version scoring
    now (a replayed row keeps the version that first answered it)."""

    answers: Answers
    replayed: NDArray[np.bool_]
    version: int
    # With explain: per row its reasons ((feature, contribution) pairs; None if replayed).
    reasons: list[list[tuple[str, float]] | None] | None = None
    explanation: dict[str, Any] | None = None

    @property
    def probabilities(self) -> NDArray[np.float64]:
        return self.answers.probability

    @property
    def decisions(self) -> NDArray[np.bool_]:
        """Fraud probability at or above the threshold of the model that answered."""
        return self.answers.is_fraud


def capture_line(
    captured_at: str,
    model: LoadedModel,
    events: Events,
    features: NDArray[np.float64],
    names: list[str],
    probabilities: NDArray[np.float64],
    decisions: NDArray[np.bool_],
    declared: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """The columns of one capture line: the request's values (the contract's, then the
    declared columns', `declared`), features by name."""
    by_feature = np.ascontiguousarray(features.T)  # orjson writes C-ordered arrays
    return {
        "captured_at": captured_at,
        "model_name": model.name,
        "model_version": model.version,
        "transaction_id": events.transaction_id,
        "tx_datetime": events.ts_us.astype("datetime64[us]"),
        "customer_id": events.customer_id,
        "terminal_id": events.terminal_id,
        "tx_amount": events.amount,
        **(declared or {}),
        "features": dict(zip(names, by_feature, strict=True)),
        "fraud_probability": probabilities,
        "is_fraud": decisions,
    }


class Scorer:
    """Everything one request needs, built once at start-up."""

    def __init__(
        self,
        store: Store,
        holder: ModelHolder,
        capture: CaptureLog,
        metrics: Metrics,
        features: Features,
        max_ahead_days: float | None,
    ) -> None:
        self.store, self.holder, self.capture, self.metrics = store, holder, capture, metrics
        self._cfg = features
        self.windows = windows(features)
        self._names = feature_columns(features)
        self._declared = [c.name for c in features.columns]
        self._max_ahead_us = None if max_ahead_days is None else int(max_ahead_days * DAY_US)

    def score(self, txs: list[Transaction], explain: bool = False) -> Scored:
        """Answer `txs` (unique ids); every answer names the version that scored it. With
        `explain`, each row scored now also gets its reasons (exact contributions)."""
        model = self.holder.current  # one reference for the whole request
        n = len(txs)
        reasoner = model.reasoner if explain else None
        explainer = None if reasoner is None else reasoner.prepare()  # before any side effect
        fresh_rows: list[tuple[NDArray[np.intp], NDArray[np.float64]]] = []
        events = Events(
            np.fromiter((tx["transaction_id"] for tx in txs), dtype=np.int64, count=n),
            np.fromiter((tx["customer_id"] for tx in txs), dtype=np.int64, count=n),
            np.fromiter((tx["terminal_id"] for tx in txs), dtype=np.int64, count=n),
            epoch_us([tx["tx_datetime"] for tx in txs]),
            # + 0.0: -0.0 is 0.0 (a retry sending 0 is the same transaction, in every store)
            np.fromiter((tx["tx_amount"] for tx in txs), dtype=np.float64, count=n) + 0.0,
            np.zeros(n, dtype=np.int64),
        )
        names = self._declared  # the declared columns (none by default: nothing to do)
        declared = declared_matrix(txs, self._cfg) if names else None

        def fresh(rows: NDArray[np.intp], agg: Aggregates) -> Answers:
            scored = events.take(rows)
            chosen = None if declared is None else declared[rows]
            x = feature_matrix(scored.ts_us, scored.amount, agg, self._cfg, chosen)
            p = model.score(x)
            decisions = np.asarray(p >= model.threshold)
            values = {c: [txs[i][c] for i in rows.tolist()] for c in names}
            self._capture(model, scored, x, p, decisions, values)  # durable before answering
            observe_many(self.metrics.scores, p)
            if reasoner is not None:
                fresh_rows.append((rows, x))  # explained after the store's transaction
            return Answers(p, decisions, np.full(len(rows), model.version, dtype=np.int64))

        outcome = self.store.score(events, fresh, self._max_ahead_us)
        replays = int(outcome.replayed.sum())
        if replays:
            self.metrics.replays.inc(replays)
        if explainer is None:
            return Scored(outcome.answers, outcome.replayed, model.version)
        reasons: list[list[tuple[str, float]] | None] = [None] * n
        for rows, x in fresh_rows:
            top = reasoner.top(x)  # type: ignore[union-attr]
            pairs = zip(top.features.tolist(), top.contributions.tolist(), strict=True)
            for at, (names, values) in zip(rows.tolist(), pairs, strict=True):
                reasons[at] = list(zip(names, values, strict=True))
        about = {"method": "exact", "output": explainer.output, "base_value": explainer.base}
        return Scored(outcome.answers, outcome.replayed, model.version, reasons, about)

    def _capture(
        self,
        model: LoadedModel,
        events: Events,
        x: NDArray[np.float64],
        p: NDArray[np.float64],
        decisions: NDArray[np.bool_],
        declared: dict[str, list[Any]],
    ) -> None:
        """Append the request's line; a line that cannot be encoded is kept aside with its
        reason and counted (the answer goes out: the record is kept, not lost)."""
        now = dt.datetime.now(dt.UTC).isoformat()
        columns = capture_line(now, model, events, x, self._names, p, decisions, declared)
        try:
            line = encode(columns)
        except (TypeError, ValueError, OverflowError) as exc:  # orjson's JSONEncodeError
            self.capture.keep_aside(columns, f"not encodable: {exc}")
            self.metrics.capture_dropped.inc(len(events))
            return
        self.capture.append(line)  # its failures are counted by the log (serving/main.py)
