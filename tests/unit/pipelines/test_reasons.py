"""Reasons: each estimator the project trains is explained, and the contributions add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines import reasons
from pipelines.config import load_pipeline_config
from pipelines.train import fit
from tests.conftest import REPO_ROOT

ESTIMATORS = ("hist_gradient_boosting", "random_forest", "logistic_regression", "xgboost")


def _data() -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(0)
    names = ["a", "b", "c"]
    frame = pd.DataFrame(rng.normal(size=(3000, 3)), columns=names)
    logit = 2 * frame["a"] - frame["b"] * frame["c"] - 3
    frame["tx_fraud"] = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, names


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_contributions_and_base_reproduce_the_raw_score(estimator: str) -> None:
    small = {
        "train.estimator": estimator,
        "train.hist_gradient_boosting.max_iter": 30,
        "train.random_forest.n_estimators": 10,
        "train.xgboost.n_estimators": 30,
    }
    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml", small)
    frame, names = _data()
    model = fit(cfg.train, frame, names)
    x = frame[names].to_numpy(np.float64)[:200]
    explainer = reasons.Explainer(model, len(names))
    raw = explainer.raw_score(x)
    expected_output = "probability" if estimator == "random_forest" else "log_odds"
    assert explainer.output == expected_output
    for method in reasons.METHODS:
        contrib = explainer.contributions(x, method)
        assert contrib.values.shape == (200, 3)
        np.testing.assert_allclose(contrib.base + contrib.values.sum(axis=1), raw, atol=1e-6)
    # The feature the label depends on most moves the score most.
    mean_abs = np.abs(explainer.contributions(x).values).mean(axis=0)
    assert int(np.argmax(mean_abs)) == names.index("a")


def test_a_model_of_another_kind_is_one_clear_error() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    frame, names = _data()
    model = KNeighborsClassifier().fit(frame[names], frame["tx_fraud"])
    with pytest.raises(reasons.ReasonsUnavailableError, match="KNeighborsClassifier"):
        reasons.Explainer(model, len(names))


def test_batch_reasons_in_worker_processes_equal_one_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch transform explains chunks in one process per core; the columns are those
    of one process, in row order."""
    from pipelines import score

    cfg = load_pipeline_config(
        REPO_ROOT / "configs/pipeline.yaml", {"train.hist_gradient_boosting.max_iter": 30}
    )
    frame, names = _data()
    model = fit(cfg.train, frame, names)
    x = frame[names].to_numpy(np.float64)[:900]
    monkeypatch.setattr(score, "CHUNK", 250)
    monkeypatch.setattr(score, "usable_cores", lambda: 1)
    alone = score.explained(model, x, names, 2, "exact")
    monkeypatch.setattr(score, "usable_cores", lambda: 2)
    parallel = score.explained(model, x, names, 2, "exact")
    assert list(parallel) == ["reason_1", "contribution_1", "reason_2", "contribution_2"]
    for column, values in alone.items():
        assert len(parallel[column]) == 900
        np.testing.assert_array_equal(parallel[column], values)
