"""Window aggregates over time-sorted timelines, for many transactions at once (NumPy).

A `Timelines` holds the events of several entities (customers or terminals) back to back:
segment k is sorted by time. Each transaction names its segment; its windows are ranges of
that segment found by binary search, and their counts and sums come out of whole-array
operations, without a Python loop over transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

KEY_LIMIT = 2**62  # segment * stride + offset must stay an exact int64


@dataclass(frozen=True)
class Timelines:
    """Events of several entities, concatenated; segment k has `lengths[k]` events."""

    ts: NDArray[np.int64]
    values: NDArray[np.float64]
    lengths: NDArray[np.int64]

    @classmethod
    def from_blobs(cls, ts: list[bytes], values: list[bytes]) -> Timelines:
        """Segments stored as raw little-endian int64 times and float64 values."""
        lengths = np.fromiter((len(b) // 8 for b in ts), dtype=np.int64, count=len(ts))
        return cls(
            np.frombuffer(b"".join(ts), dtype="<i8").astype(np.int64, copy=False),
            np.frombuffer(b"".join(values), dtype="<f8").astype(np.float64, copy=False),
            lengths,
        )


def _after(tl: Timelines, seg: NDArray[np.int64], x: NDArray[np.int64]) -> NDArray[np.int64]:
    """For each query: the index of the first event of segment `seg[i]` later than `x[i]`."""
    ends = np.cumsum(tl.lengths)
    starts = ends - tl.lengths
    if tl.ts.size == 0:
        return starts[seg]
    lo = min(int(tl.ts.min()), int(x.min()))
    stride = max(int(tl.ts.max()), int(x.max())) - lo + 1
    if len(tl.lengths) * stride < KEY_LIMIT:  # one search over (segment, time) keys
        owner = np.repeat(np.arange(len(tl.lengths), dtype=np.int64), tl.lengths)
        keys = owner * stride + (tl.ts - lo)
        found = np.searchsorted(keys, seg * stride + (x - lo), side="right")
        return np.asarray(found, dtype=np.int64)
    out = np.empty(len(seg), dtype=np.int64)  # times too far apart to combine: one by one
    for i, (s, v) in enumerate(zip(seg.tolist(), x.tolist(), strict=True)):
        a, b = int(starts[s]), int(ends[s])
        out[i] = a + int(np.searchsorted(tl.ts[a:b], v, side="right"))
    return out


def _range_sums(
    values: NDArray[np.float64], a: NDArray[np.int64], b: NDArray[np.int64]
) -> NDArray[np.float64]:
    """sum(values[a[i]:b[i]]) for every i (each sum over its own range only)."""
    if a.size == 0:
        return np.zeros(0)
    # reduceat also sums each gap from b[i] to the next a: ranges in order of a keep the
    # gaps short (their total is at most the array's length).
    order = np.argsort(a, kind="stable")
    bounds = np.empty(2 * a.size, dtype=np.int64)
    bounds[0::2], bounds[1::2] = a[order], b[order]
    sums = np.empty(a.size)
    sums[order] = np.add.reduceat(np.append(values, 0.0), bounds)[0::2]
    sums[a >= b] = 0.0  # reduceat gives values[a] for an empty range
    return sums


def aggregate(
    tl: Timelines,
    seg: NDArray[np.int64],
    t: NDArray[np.int64],
    windows: tuple[tuple[int, int], ...],
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Counts and value sums of each transaction's windows (t - lo, t - hi] in its segment.

    Returns two arrays of shape (transactions, windows). Windows often share an edge (every
    customer window ends at t): each distinct edge is searched once.
    """
    n, k = len(t), len(windows)
    edges = sorted({e for w in windows for e in w})
    at = {e: j for j, e in enumerate(edges)}
    offsets = np.array(edges, dtype=np.int64)
    found = _after(tl, np.repeat(seg, len(edges)), (t[:, None] - offsets).ravel())
    found = found.reshape(n, len(edges))
    a = found[:, [at[lo] for lo, _ in windows]].ravel()
    b = found[:, [at[hi] for _, hi in windows]].ravel()
    counts = (b - a).reshape(n, k)
    return counts, _range_sums(tl.values, a, b).reshape(n, k)


def latest(
    tl: Timelines, seg: NDArray[np.int64], t: NDArray[np.int64], window: tuple[int, int]
) -> NDArray[np.int64]:
    """The time of each transaction's latest event in the window (t - lo, t - hi] of its
    segment, or `none` (the int64 minimum) when the window is empty."""
    lo, hi = window
    a = _after(tl, seg, t - lo)
    b = _after(tl, seg, t - hi)
    out = np.full(len(t), np.iinfo(np.int64).min, dtype=np.int64)
    found = b > a
    out[found] = tl.ts[b[found] - 1]
    return out
