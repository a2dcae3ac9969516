"""Behavioural tests of a trained model: directional and invariance checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from pipelines import schema, stages
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
