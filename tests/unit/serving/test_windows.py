"""Window aggregates over packed timelines equal a direct count over every event."""

from __future__ import annotations

import numpy as np
import pytest

from serving.store import windows as w
from serving.store.windows import Timelines, aggregate

WINDOWS = ((100, 0), (1_000, 0), (1_000, 300), (5_000, 1))


def _brute(tl: Timelines, seg: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ends = np.cumsum(tl.lengths)
    counts = np.zeros((len(t), len(WINDOWS)), dtype=np.int64)
    sums = np.zeros((len(t), len(WINDOWS)))
    for i, (s, ti) in enumerate(zip(seg, t, strict=True)):
        ts = tl.ts[ends[s] - tl.lengths[s] : ends[s]]
        values = tl.values[ends[s] - tl.lengths[s] : ends[s]]
        for j, (lo, hi) in enumerate(WINDOWS):
            inside = (ts > ti - lo) & (ts <= ti - hi)
            counts[i, j], sums[i, j] = inside.sum(), values[inside].sum()
    return counts, sums


def _timelines(rng: np.random.Generator, base: int) -> Timelines:
    lengths = rng.integers(0, 30, 12)
    ts = np.concatenate([np.sort(base + rng.integers(0, 6_000, n)) for n in lengths])
    return Timelines(ts.astype(np.int64), np.round(rng.uniform(0, 100, ts.size), 2), lengths)


@pytest.mark.parametrize("base", [0, 1_500_000_000_000_000, -(2**61)])
def test_aggregates_equal_a_direct_count(base: int) -> None:
    rng = np.random.default_rng(1)
    tl = _timelines(rng, base)
    seg = rng.integers(0, len(tl.lengths), 200)
    t = base + rng.integers(-100, 7_000, 200)
    t[:20] = tl.ts[rng.integers(0, tl.ts.size, 20)]  # ties with stored events
    counts, sums = aggregate(tl, seg, t, WINDOWS)
    expected_counts, expected_sums = _brute(tl, seg, t)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_allclose(sums, expected_sums, rtol=0, atol=1e-9)


def test_times_too_far_apart_for_one_search_are_searched_per_segment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(w, "KEY_LIMIT", 1)  # forces the per-segment path
    rng = np.random.default_rng(2)
    tl = _timelines(rng, 0)
    seg = rng.integers(0, len(tl.lengths), 50)
    t = rng.integers(0, 7_000, 50)
    counts, sums = aggregate(tl, seg, t, WINDOWS)
    expected_counts, expected_sums = _brute(tl, seg, t)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_allclose(sums, expected_sums, rtol=0, atol=1e-9)


def test_empty_timelines_give_empty_windows() -> None:
    tl = Timelines.from_blobs([b"", b""], [b"", b""])
    counts, sums = aggregate(tl, np.array([0, 1, 1]), np.array([5, 6, 7]), WINDOWS)
    assert not counts.any()
    assert not sums.any()


def test_segments_appended_out_of_order_are_sorted_within_themselves() -> None:
    from serving.store.timelines import _in_order

    tl = Timelines(
        np.array([5, 1, 3, 10, 20, 9, 7, 8], dtype=np.int64),
        np.array([0.5, 0.1, 0.3, 1.0, 2.0, 0.9, 0.7, 0.8]),
        np.array([3, 2, 0, 3], dtype=np.int64),  # the second is in order; one is empty
    )
    got = _in_order(tl, np.array([False, True, True, False]))
    assert got.ts.tolist() == [1, 3, 5, 10, 20, 7, 8, 9]
    assert got.values.tolist() == [0.1, 0.3, 0.5, 1.0, 2.0, 0.7, 0.8, 0.9]
    assert got.lengths.tolist() == [3, 2, 0, 3]
