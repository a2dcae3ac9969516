"""The split protocol and the estimator factory."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipelines import schema
from pipelines.config import PipelineConfig
from pipelines.train import folds, make_estimator, scoring_block, with_day


def test_folds_follow_the_protocol(tiny: PipelineConfig) -> None:
    cfg = tiny.train.model_copy(update={"start_date": dt.date(2018, 7, 25), "folds": 3})
    f0, f1, f2 = folds(cfg, delay_days=7)
    assert (f0.train_start, f0.train_end) == (dt.date(2018, 7, 25), dt.date(2018, 8, 1))
    assert (f0.test_start, f0.test_end) == (dt.date(2018, 8, 8), dt.date(2018, 8, 15))
    assert f1.train_start == dt.date(2018, 7, 18)
    assert f2.test_end == dt.date(2018, 8, 1)


def test_earliest_anchor_runs_the_folds_forward_from_start_date(tiny: PipelineConfig) -> None:
    # The handbook's four test folds: training from 07-25, 08-01, 08-08 and 08-15.
    update = {"start_date": dt.date(2018, 7, 25), "folds": 4, "anchor": "earliest"}
    forward = folds(tiny.train.model_copy(update=update), delay_days=7)
    assert [f.train_start for f in forward] == [
        dt.date(2018, 8, 15),
        dt.date(2018, 8, 8),
        dt.date(2018, 8, 1),
        dt.date(2018, 7, 25),
    ]
    assert forward[0].test_end == dt.date(2018, 9, 5)  # fold 0 is the latest, as with `latest`
    # The same folds, anchored at the latest one.
    update = {**update, "start_date": dt.date(2018, 8, 15), "anchor": "latest"}
    assert folds(tiny.train.model_copy(update=update), delay_days=7) == forward


def test_known_compromised_cards_leave_the_test_block(tiny: PipelineConfig) -> None:
    fold = folds(tiny.train, delay_days=7)[0]  # train 04-16..04-23, test 04-30..05-07
    rows = [
        ("2018-04-20 10:00", 1, 1),  # card 1: fraud in training -> known on every test day
        ("2018-04-30 10:00", 1, 0),
        ("2018-04-25 10:00", 2, 1),  # card 2: fraud in the delay block, on 04-25
        ("2018-05-02 10:00", 2, 0),  # 04-25 + 7 = 05-02: not yet older than the delay
        ("2018-05-03 10:00", 2, 0),  # known from 05-03 on
        ("2018-05-01 10:00", 3, 1),  # card 3: fraud inside the test block stays
    ]
    frame = with_day(
        pd.DataFrame(
            {
                schema.TX_DATETIME: pd.to_datetime([r[0] for r in rows]),
                schema.CUSTOMER_ID: [r[1] for r in rows],
                schema.TX_FRAUD: [r[2] for r in rows],
            }
        )
    )
    kept = scoring_block(frame, fold)
    assert sorted(kept[schema.TX_DATETIME].dt.strftime("%m-%d")) == ["05-01", "05-02"]


@pytest.mark.parametrize(
    ("estimator", "kind"),
    [
        ("hist_gradient_boosting", "HistGradientBoostingClassifier"),
        ("random_forest", "RandomForestClassifier"),
        ("logistic_regression", "Pipeline"),
        ("xgboost", "XGBClassifier"),
    ],
)
def test_every_configured_estimator_builds(tiny: PipelineConfig, estimator: str, kind: str) -> None:
    model = make_estimator(tiny.train.model_copy(update={"estimator": estimator}))
    assert type(model).__name__ == kind


def test_the_benchmarks_handbook_preset_is_the_handbooks_protocol() -> None:
    from benchmarks.handbook import HANDBOOK
    from pipelines.config import load_pipeline_config
    from pipelines.schema import feature_columns
    from tests.conftest import REPO_ROOT

    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml", HANDBOOK)
    starts = sorted(f.train_start for f in folds(cfg.train, cfg.features.label_delay_days))
    assert starts == [dt.date(2018, 7, 25) + dt.timedelta(days=7 * i) for i in range(4)]
    assert len(feature_columns(cfg.features)) == 15
    assert cfg.evaluate.top_k == 100
