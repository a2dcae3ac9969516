"""Prometheus metrics, correct with several worker processes (multiprocess mode).

`python -m serving` sets PROMETHEUS_MULTIPROC_DIR before the workers start; each worker
writes its samples there and `/metrics` aggregates them. Without it (tests, one process)
the default registry is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


@dataclass(frozen=True)
class Metrics:
    """The service's instruments and the registry they live in."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    scores: Histogram
    model_version: Gauge
    capture_dropped: Counter
    capture_failures: Counter
    replays: Counter
    model_load_failures: Counter

    def model_changed(self, name: str, alias: str, version: int | None, failed: bool) -> None:
        """Record a swap (the version now served) or a failed load."""
        if version is not None:
            self.model_version.labels(name, alias).set(version)
        if failed:
            self.model_load_failures.inc()


def make_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """Create the instruments in `registry` (a fresh one per app, so tests do not collide)."""
    reg = registry or CollectorRegistry()
    return Metrics(
        registry=reg,
        requests=Counter(
            "fraudops_requests_total",
            "Requests by route and status",
            ["route", "status"],
            registry=reg,
        ),
        latency=Histogram(
            "fraudops_request_seconds",
            "Request latency by route and status",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ),
        scores=Histogram(
            "fraudops_fraud_probability",
            "Distribution of scores served",
            buckets=SCORE_BUCKETS,
            registry=reg,
        ),
        model_version=Gauge(
            "fraudops_model_version",
            "Registry version being served",
            ["name", "alias"],
            multiprocess_mode="liveall",
            registry=reg,
        ),
        capture_dropped=Counter(
            "fraudops_capture_dropped_total",
            "Answered transactions kept aside in <capture dir>/rejected/ (not encodable) "
            "instead of the prediction log",
            registry=reg,
        ),
        capture_failures=Counter(
            "fraudops_capture_failures_total",
            "Failed writes or fsyncs of the capture and label logs (a failed write: its "
            "request was refused with 503)",
            registry=reg,
        ),
        replays=Counter(
            "fraudops_replays_total",
            "Transactions answered again with their first answer (client retries)",
            registry=reg,
        ),
        model_load_failures=Counter(
            "fraudops_model_load_failures_total",
            "Failed attempts to load a new model version",
            registry=reg,
        ),
    )


def observe_many(histogram: Histogram, values: NDArray[np.float64]) -> None:
    """`histogram.observe(v)` for every v, with one update per bucket instead of per value.

    prometheus_client has no batch observe; this adds each bucket's count the way `observe`
    adds one (its per-bucket values, then the sum). Without those internals (another
    version), it falls back to observing one value at a time.
    """
    buckets = getattr(histogram, "_buckets", None)
    bounds = getattr(histogram, "_upper_bounds", None)
    total = getattr(histogram, "_sum", None)
    if buckets is None or bounds is None or total is None or len(values) < 2:
        for v in values.tolist():
            histogram.observe(v)
        return
    # observe() counts a value in the first bucket whose bound is >= it (NaN: in none).
    first = np.searchsorted(np.asarray(bounds, dtype=np.float64), values, side="left")
    counts = np.bincount(first[~np.isnan(values)], minlength=len(bounds) + 1)
    for bucket, count in zip(buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
    total.inc(float(values.sum()))


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition: aggregated over workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST
    return generate_latest(registry), CONTENT_TYPE_LATEST
