"""A compiled scoring path for HistGradientBoostingClassifier: QuickScorer in NumPy.

scikit-learn walks each tree for each row; for a few hundred small trees that is ~10 ms per
1,000 rows, and about a millisecond of per-call overhead for one row. QuickScorer (Lucchese
et al., SIGIR 2015) needs no walk: every split that sends a row right rules out the leaves
of its left subtree, and a tree's exit leaf is the leftmost leaf not ruled out. Per feature,
the splits sorted by threshold give a table: row r of it is the AND of the leaf masks of the
r lowest thresholds. Scoring a batch is then, per feature, one binary search and one table
gather, ANDed together; the exit leaves' values are summed per row.

The path is used only when it reproduces the model's own `predict_proba` on every check row
(to 1e-9) at load time; otherwise the service scores with the model itself, logs why at
WARNING and says so in `GET /v1/model` (`scorer`). Why it exists, with the figures:
docs/adr/0003-compiled-scorer.md.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

Scorer = Callable[[NDArray[np.float64]], NDArray[np.float64]]
TOLERANCE = 1e-9
BITS = 16  # leaves per tree at most: one uint16 mask per tree, four trees per uint64 word
ALL = (1 << BITS) - 1
# The scikit-learn internals read here: the model's attributes and its trees' node fields.
PRIVATE = ("_predictors", "_baseline_prediction", "_loss")
NODE_FIELDS = (
    "is_leaf",
    "left",
    "right",
    "value",
    "feature_idx",
    "num_threshold",
    "missing_go_to_left",
)
# The exit leaf of a tree: the lowest bit still set in its mask (uint8: a 64 KiB table).
LOWEST_BIT = np.array([max(0, (v & -v).bit_length() - 1) for v in range(1 << BITS)], dtype=np.uint8)


def _leaves(nodes: Any) -> tuple[list[int], dict[int, int]]:
    """The tree's leaves from left to right, and each node's mask of its left subtree's leaves."""
    order: list[int] = []
    left_mask: dict[int, int] = {}

    def walk(i: int) -> int:  # returns the bit mask of the leaves under node i
        if nodes["is_leaf"][i]:
            order.append(i)
            return 1 << (len(order) - 1)
        left = walk(int(nodes["left"][i]))
        left_mask[i] = left
        return left | walk(int(nodes["right"][i]))

    walk(0)
    return order, left_mask


class QuickScorer:
    """Per-feature tables of leaf masks; every tree's leaf values by position."""

    def __init__(self, model: Any, n_features: int) -> None:
        trees = [p.nodes for it in model._predictors for p in it]
        self.words = -(-len(trees) // 4)  # padding trees: one leaf of value 0
        self.values = np.zeros((4 * self.words, BITS))
        # Per feature: (threshold, tree, mask) of its splits; whether a missing value goes right.
        splits: list[list[tuple[float, int, int, bool]]] = [[] for _ in range(n_features)]
        for t, nodes in enumerate(trees):
            order, left_mask = _leaves(nodes)
            self.values[t, : len(order)] = nodes["value"][order]
            for i, leaves in left_mask.items():
                mask = ALL & ~leaves  # going right rules out the left subtree's leaves
                splits[int(nodes["feature_idx"][i])].append(
                    (float(nodes["num_threshold"][i]), t, mask, not nodes["missing_go_to_left"][i])
                )
        self.thresholds: list[NDArray[np.float64]] = []
        self.tables: list[NDArray[np.uint64]] = []
        for f_splits in splits:
            f_splits.sort(key=lambda s: s[0])
            table = np.full((len(f_splits) + 2, 4 * self.words), ALL, dtype=np.uint16)
            for r, (_, t, mask, missing_right) in enumerate(f_splits, start=1):
                table[r:-1, t] &= mask  # row r: the r lowest thresholds are exceeded
                if missing_right:
                    table[-1, t] &= mask  # the last row: a missing value
            self.thresholds.append(np.array([s[0] for s in f_splits], dtype=np.float64))
            self.tables.append(table.view(np.uint64))
        self.offsets = np.arange(4 * self.words) * BITS
        self.baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
        # One row: every feature's row of the tables, stacked, found by bisect on lists
        # (NumPy's per-call overhead, paid once per feature, is most of a one-row score).
        starts = np.cumsum([0] + [len(t) for t in self.tables[:-1]])
        self._stacked = np.concatenate(self.tables)
        self._one = [
            (f, t.tolist(), int(starts[f]), len(self.tables[f]) - 1)
            for f, t in enumerate(self.thresholds)
            if t.size
        ]

    def raw(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Sum of the exit leaves' values plus the baseline, per row."""
        if x.shape[0] == 1:
            return self._raw_one(x[0].tolist())
        alive = np.full((x.shape[0], self.words), np.uint64(2**64 - 1))
        columns = np.ascontiguousarray(x.T)  # searched column by column
        for f, (thresholds, table) in enumerate(zip(self.thresholds, self.tables, strict=True)):
            if thresholds.size:
                column = columns[f]
                exceeded = np.searchsorted(thresholds, column, side="left")
                exceeded[np.isnan(column)] = len(table) - 1
                alive &= table[exceeded]
        return self._leaf_sums(alive)

    def _raw_one(self, row: list[float]) -> NDArray[np.float64]:
        rows = [
            start + (bisect.bisect_left(thresholds, row[f]) if row[f] == row[f] else missing)
            for f, thresholds, start, missing in self._one  # row[f] != row[f]: NaN
        ]
        alive = np.bitwise_and.reduce(self._stacked[rows], axis=0, keepdims=True)
        return self._leaf_sums(alive)

    def _leaf_sums(self, alive: NDArray[np.uint64]) -> NDArray[np.float64]:
        leaf = np.take(LOWEST_BIT, alive.view(np.uint16)).astype(np.intp)
        leaf += self.offsets
        total = np.take(self.values.ravel(), leaf).sum(axis=1)
        return np.asarray(self.baseline + total, dtype=np.float64)

    def proba(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Fraud probability (the binomial loss's inverse link: the logistic function)."""
        return np.asarray(1.0 / (1.0 + np.exp(-self.raw(x))), dtype=np.float64)


def check_rows(model: Any, n_features: int, n: int = 512, seed: int = 0) -> NDArray[np.float64]:
    """Rows that hit every split edge: each threshold, just above and below, and NaN."""
    nodes = np.concatenate([p.nodes for it in model._predictors for p in it])
    splits = nodes[~nodes["is_leaf"].astype(bool)]
    rng = np.random.default_rng(seed)
    x = np.zeros((n, n_features))
    for j in range(n_features):
        t = splits["num_threshold"][splits["feature_idx"] == j].astype(np.float64)
        candidates = np.concatenate([t, np.nextafter(t, np.inf), t - 1e-6, [0.0, np.nan]])
        x[:, j] = rng.choice(candidates, n)
    return x


def unsupported(model: Any) -> str | None:
    """Why the compiled scorer cannot score `model` (checked before verifying it), or None.

    It reads scikit-learn internals (`PRIVATE`, `NODE_FIELDS`); pyproject.toml pins the
    scikit-learn minor version they were read from (docs/adr/0003-compiled-scorer.md).
    """
    name = type(model).__name__
    if name != "HistGradientBoostingClassifier":
        return f"{name} is not a HistGradientBoostingClassifier"
    missing = [a for a in PRIVATE if not hasattr(model, a)]
    if missing:
        return f"scikit-learn {_sklearn()} has no {', '.join(missing)} on the model"
    nodes = getattr(model._predictors[0][0], "nodes", None)
    fields = getattr(getattr(nodes, "dtype", None), "names", None) or ()
    missing = [f for f in NODE_FIELDS if f not in fields]
    if missing:
        return f"scikit-learn {_sklearn()}: the trees' `nodes` have no {', '.join(missing)}"
    if len(model.classes_) != 2 or type(model._loss).__name__ != "HalfBinomialLoss":
        return f"not a binary model with the binomial loss ({type(model._loss).__name__})"
    categorical = getattr(model, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        return "categorical features"
    leaves = max(int(p.nodes["is_leaf"].sum()) for it in model._predictors for p in it)
    if leaves > BITS:
        return f"a tree has {leaves} leaves, more than {BITS} (max_leaf_nodes)"
    return None


def _sklearn() -> str:
    try:
        return metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:  # pragma: no cover - the model came from it
        return "(not installed)"


def compile_model(model: Any, n_features: int) -> Scorer | None:
    """A faster scorer equal to `model.predict_proba(x)[:, 1]` at every split edge, or None."""
    reason = unsupported(model)
    if reason is not None:
        log.warning("compiled scorer not used, scoring with predict_proba: %s", reason)
        return None
    scorer = QuickScorer(model, n_features)
    check = check_rows(model, n_features)
    expected = model.predict_proba(check)[:, 1]
    one_by_one = np.concatenate([scorer.proba(check[i : i + 1]) for i in range(len(check))])
    worst = float(
        max(np.max(np.abs(scorer.proba(check) - expected)), np.max(np.abs(one_by_one - expected)))
    )
    if not worst <= TOLERANCE:
        log.warning("compiled scorer differs by %.2e, scoring with predict_proba", worst)
        return None
    log.info("compiled scorer verified on %d rows (max difference %.1e)", len(check), worst)
    return scorer.proba
