"""The compiled scoring path equals the model's own predict_proba, or is not used (and says so)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier

from pipelines import schema, train
from pipelines.config import load_pipeline_config
from pipelines.schema import feature_columns
from pipelines.search import search_space
from serving.compiled import (
    BITS,
    NODE_FIELDS,
    PRIVATE,
    QuickScorer,
    check_rows,
    compile_model,
    unsupported,
)
from serving.model import LoadedModel
from tests.conftest import REPO_ROOT


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


# The service's fast path, for the model this project trains. These fail (not warn) when a
# scikit-learn upgrade or a config change would make the service fall back to predict_proba:
# docs/adr/0003-compiled-scorer.md says what to do then.


def _projects_model() -> tuple[Any, np.ndarray]:
    """The configured estimator, fitted by the training stage's own `fit` on small data."""
    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml")
    features = feature_columns(cfg.features)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.gamma(2.0, 20.0, size=(4000, len(features))), columns=features)
    frame.iloc[rng.random(len(frame)) < 0.05, -1] = np.nan  # a window without history
    score = frame[features[0]] / 40 + frame[features[-1]].fillna(0) / 80
    frame[schema.TX_FRAUD] = (score + rng.normal(0, 0.3, len(frame)) > 2.2).astype(int)
    model = train.fit(cfg.train, frame, features)
    return model, frame[features].to_numpy(np.float64)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # as serving/main.py
def test_the_projects_model_takes_the_compiled_path() -> None:
    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml")
    assert cfg.train.estimator == "hist_gradient_boosting", (
        f"train.estimator is {cfg.train.estimator!r}: the service scores it with predict_proba "
        "(serving/compiled.py compiles HistGradientBoosting only); if intended, delete "
        "serving/compiled.py and this test (docs/adr/0003-compiled-scorer.md)"
    )
    leaves = cfg.train.hist_gradient_boosting.max_leaf_nodes
    assert leaves <= BITS, f"max_leaf_nodes={leaves} > {BITS}: the service would fall back"
    model, x = _projects_model()
    assert unsupported(model) is None, f"the service would fall back: {unsupported(model)}"
    scorer = compile_model(model, x.shape[1])
    assert scorer is not None, "compile_model returned None: the service would fall back"
    np.testing.assert_allclose(scorer(x), model.predict_proba(x)[:, 1], rtol=0, atol=1e-12)


def test_the_private_attributes_it_reads_exist() -> None:
    model, _ = _fitted(15)
    version = sklearn.__version__
    for name in PRIVATE:
        assert hasattr(model, name), f"scikit-learn {version}: no {name} on the model"
    fields = model._predictors[0][0].nodes.dtype.names
    for name in NODE_FIELDS:
        assert name in fields, f"scikit-learn {version}: the trees' nodes have no {name!r}"
    assert type(model._loss).__name__ == "HalfBinomialLoss", f"scikit-learn {version}: loss"


class _Highest:
    """An Optuna trial that always suggests the top of the range."""

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> int:
        return high

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return high


def test_a_tuned_model_would_still_be_compiled() -> None:
    """`make tune` proposes its params for the config: they must keep the compiled path."""
    highest = search_space(_Highest(), "hist_gradient_boosting")["max_leaf_nodes"]
    assert highest <= BITS, (
        f"make tune may propose max_leaf_nodes up to {highest} > {BITS}: "
        "the service would then score with predict_proba"
    )


def test_a_fallback_is_logged_and_shown(caplog: pytest.LogCaptureFixture) -> None:
    model, _ = _fitted(31)
    with caplog.at_level(logging.WARNING, logger="serving.compiled"):
        compiled = compile_model(model, 6)
    assert compiled is None
    assert "31 leaves, more than 16" in caplog.text
    loaded = LoadedModel(model, "m", 1, "champion", 0.5, [], "d", dt.datetime.now(dt.UTC))
    assert loaded.scorer == "predict_proba"
    small, _ = _fitted(8)
    assert dataclasses.replace(loaded, compiled=compile_model(small, 6)).scorer == "compiled"
