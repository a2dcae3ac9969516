"""`observe_many` adds a batch of scores to a histogram as `observe` would one by one; it reads
prometheus_client's histogram internals, so a version that changes them fails here, loudly."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from serving.metrics import SCORE_BUCKETS, observe_many


def _histogram() -> Histogram:
    return Histogram("scores", "test", buckets=SCORE_BUCKETS, registry=CollectorRegistry())


def _samples(h: Histogram) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("le", "")): s.value for m in h.collect() for s in m.samples}


def test_the_internals_it_reads_are_there() -> None:
    h = _histogram()
    missing = [a for a in ("_buckets", "_upper_bounds", "_sum") if not hasattr(h, a)]
    assert not missing, f"prometheus_client changed: Histogram lacks {missing}"


def test_a_batch_counts_as_one_observe_per_value() -> None:
    values = np.random.default_rng(3).random(1000)
    values[:3] = [0.0, 1.0, 0.005]  # on bucket bounds
    batch, single = _histogram(), _histogram()
    observe_many(batch, values)
    for v in values.tolist():
        single.observe(v)
    got, expected = _samples(batch), _samples(single)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if key[0] != "scores_created":
            assert got[key] == value or abs(got[key] - value) < 1e-9, key
