"""Behavioural tests of a trained model: directional and invariance checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from pipelines import reasons, schema, stages
from pipelines.config import PipelineConfig
from pipelines.evaluate import score
from pipelines.io import read_table
from pipelines.schema import feature_columns
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, pd.DataFrame, PipelineConfig]:
    fitted = {
        "train.hist_gradient_boosting.max_iter": 200,
        "train.hist_gradient_boosting.learning_rate": 0.1,
    }
    cfg = tiny_config(Path(tmp_path_factory.mktemp("model")), **fitted)
    for stage in (stages.generate, stages.validate, stages.features, stages.train):
        stage(cfg)
    return joblib.load(cfg.paths.model), read_table(cfg.paths.features), cfg


def _with_amount(rows: pd.DataFrame, amount: float, cfg: PipelineConfig) -> pd.DataFrame:
    """The same transactions at another amount, with the amount's own features updated."""
    out = rows.copy()
    for w in cfg.features.customer_windows_days:
        n = out[f"customer_id_nb_tx_{w}day_window"]
        mean = out[f"customer_id_avg_amount_{w}day_window"]
        new_mean = mean + (amount - out[schema.TX_AMOUNT]) / n
        out[f"customer_id_avg_amount_{w}day_window"] = new_mean
        if cfg.features.customer_amount_ratio:
            out[f"customer_id_amount_ratio_{w}day_window"] = amount / new_mean
    out[schema.TX_AMOUNT] = amount
    return out


def test_scenario_1_amounts_score_higher(trained: tuple[Any, pd.DataFrame, PipelineConfig]) -> None:
    model, frame, cfg = trained
    legit = frame[frame[schema.TX_FRAUD] == 0].sample(300, random_state=0)
    features = feature_columns(cfg.features)
    low = score(model, _with_amount(legit, 40.0, cfg), features)
    high = score(model, _with_amount(legit, 400.0, cfg), features)
    assert np.mean(high > low) > 0.95
    assert high.mean() > 3 * low.mean()


def test_score_does_not_depend_on_transaction_id(
    trained: tuple[Any, pd.DataFrame, PipelineConfig],
) -> None:
    model, frame, cfg = trained
    rows = frame.sample(200, random_state=1)
    shuffled = rows.assign(**{schema.TRANSACTION_ID: rows[schema.TRANSACTION_ID].to_numpy()[::-1]})
    features = feature_columns(cfg.features)
    assert schema.TRANSACTION_ID not in features
    np.testing.assert_array_equal(score(model, rows, features), score(model, shuffled, features))


def test_scores_are_probabilities(trained: tuple[Any, pd.DataFrame, PipelineConfig]) -> None:
    model, frame, cfg = trained
    s = score(model, frame, feature_columns(cfg.features))
    assert ((s >= 0) & (s <= 1)).all()


def test_reasons_add_up_to_the_raw_score(trained: tuple[Any, pd.DataFrame, PipelineConfig]) -> None:
    model, frame, cfg = trained
    x = frame.sample(300, random_state=2)[feature_columns(cfg.features)].to_numpy(np.float64)
    explainer = reasons.Explainer(model, x.shape[1])
    raw = explainer.raw_score(x)
    assert explainer.output == "log_odds"
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), model.predict_proba(x)[:, 1], atol=1e-12)
    for method in reasons.METHODS:
        contrib = explainer.contributions(x, method)
        np.testing.assert_allclose(contrib.base + contrib.values.sum(axis=1), raw, atol=1e-6)


def test_a_5x_amount_raises_the_amount_contribution(
    trained: tuple[Any, pd.DataFrame, PipelineConfig],
) -> None:
    """The amount moves tx_amount and the customer's amount averages and ratios together;
    SHAP shares the credit among them, so their sum is what must rise."""
    model, frame, cfg = trained
    features = feature_columns(cfg.features)
    amount = [i for i, name in enumerate(features) if "amount" in name]
    legit = frame[frame[schema.TX_FRAUD] == 0].sample(300, random_state=3)
    usual = _with_amount(legit, 80.0, cfg)[features].to_numpy(np.float64)
    five = _with_amount(legit, 400.0, cfg)[features].to_numpy(np.float64)  # past 220
    explainer = reasons.Explainer(model, len(features))
    before, after = explainer.contributions(usual), explainer.contributions(five)
    raised = after.values[:, amount].sum(axis=1) > before.values[:, amount].sum(axis=1)
    assert raised.mean() > 0.9
    first = reasons.top(after, features, 3).features[:, 0]
    assert np.isin(first, [features[i] for i in amount]).mean() > 0.9


def test_top_reasons_are_the_largest_contributions_by_magnitude() -> None:
    values = np.array([[0.1, -0.5, 0.3, 0.0], [2.0, 0.0, -0.1, -3.0]])
    contrib = reasons.Contributions(values, -4.0, "log_odds", "exact")
    top = reasons.top(contrib, ["a", "b", "c", "d"], 2)
    assert top.features.tolist() == [["b", "c"], ["d", "a"]]
    assert top.contributions.tolist() == [[-0.5, 0.3], [-3.0, 2.0]]
    assert reasons.top(contrib, ["a", "b", "c", "d"], 9).features.shape == (2, 4)
