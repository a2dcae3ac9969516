"""The compiled scoring path equals the model's own predict_proba, or is not used."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from serving.compiled import QuickScorer, check_rows, compile_model


def _fitted(max_leaf_nodes: int) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3000, 6))
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take their learned side
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * x[:, 2] > 0.5).astype(int)
    model = HistGradientBoostingClassifier(
        max_iter=40, max_leaf_nodes=max_leaf_nodes, random_state=0
    ).fit(x, y)
    return model, x


def test_batches_and_single_rows_equal_predict_proba() -> None:
    model, x = _fitted(15)
    scorer = compile_model(model, 6)
    assert scorer is not None
    rows = np.vstack([x[:500], check_rows(model, 6)])  # every split edge, NaN included
    expected = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(scorer(rows), expected, rtol=0, atol=1e-12)
    one_by_one = np.concatenate([scorer(rows[i : i + 1]) for i in range(len(rows))])
    np.testing.assert_allclose(one_by_one, expected, rtol=0, atol=1e-12)


def test_one_row_and_batch_paths_agree_bit_for_bit() -> None:
    model, x = _fitted(8)
    quick = QuickScorer(model, 6)
    batch = quick.raw(x[:200])
    single = np.concatenate([quick.raw(x[i : i + 1]) for i in range(200)])
    assert np.array_equal(batch, single)


def test_trees_too_large_for_the_masks_are_not_compiled() -> None:
    model, _ = _fitted(31)  # more than 16 leaves a tree: the model scores by itself
    assert compile_model(model, 6) is None
