"""The simulator: deterministic, the handbook's design, and the production drift scenarios."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import schema, stages
from pipelines.config import PipelineConfig
from pipelines.generate import make_profiles, simulate_history, simulate_production
from tests.conftest import tiny_config


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first = stages.generate(tiny_config(tmp_path / "a"))
    second = stages.generate(tiny_config(tmp_path / "b"))
    assert _digest(first) == _digest(second)


def test_another_seed_other_data(tiny: PipelineConfig) -> None:
    other = tiny.generate.model_copy(update={"seed": 7})
    assert not simulate_history(tiny.generate).equals(simulate_history(other))


def test_contract_columns_types_and_order(tiny: PipelineConfig) -> None:
    df = simulate_history(tiny.generate)
    assert list(df.columns) == list(schema.RAW_COLUMNS)
    assert df.dtypes.astype(str).to_dict() == schema.RAW_DTYPES
    assert df[schema.TRANSACTION_ID].tolist() == list(range(len(df)))
    assert df[schema.TX_DATETIME].is_monotonic_increasing
    start = pd.Timestamp(tiny.generate.start_date)
    assert df[schema.TX_DATETIME].min() >= start
    assert df[schema.TX_DATETIME].max() < start + pd.Timedelta(days=tiny.generate.n_days)
    assert (df[schema.TX_AMOUNT] >= 0).all()


def test_every_fraud_scenario_follows_its_rule(tiny: PipelineConfig) -> None:
    df = simulate_history(tiny.generate)
    scenario = df[schema.TX_FRAUD_SCENARIO]
    assert set(scenario.unique()) == {0, 1, 2, 3}
    assert (df[schema.TX_FRAUD] == (scenario > 0)).all()
    # Scenario 1: every amount above the threshold is fraud (scenario 1 unless overridden).
    above = df[schema.TX_AMOUNT] > tiny.generate.fraud.amount_threshold
    assert df.loc[above, schema.TX_FRAUD].all()
    # Scenario 2: all transactions of a compromised terminal in the window are fraud.
    first = df[scenario == 2].iloc[0]
    window = (df[schema.TERMINAL_ID] == first[schema.TERMINAL_ID]) & df[schema.TX_DATETIME].between(
        first[schema.TX_DATETIME], first[schema.TX_DATETIME] + pd.Timedelta(hours=24)
    )
    assert df.loc[window, schema.TX_FRAUD].all()


def test_profiles_keep_about_75_terminals_per_customer_at_any_density(tiny: PipelineConfig) -> None:
    for n_terminals in (10_000, 2_500):
        cfg = tiny.generate.model_copy(update={"n_customers": 2_000, "n_terminals": n_terminals})
        mean = make_profiles(cfg).terminal_counts.mean()
        assert 65 < mean < 80, (n_terminals, mean)


def test_reference_scale_rate_is_the_handbooks(tiny: PipelineConfig) -> None:
    # A tenth of the customers over the full 183 days keeps the per-customer behaviour.
    cfg = tiny.generate.model_copy(
        update={
            "n_customers": 500,
            "n_terminals": 10_000,
            "n_days": 183,
            "fraud": tiny.generate.fraud.model_copy(
                update={"compromised_terminals_per_day": 2, "compromised_customers_per_day": 1}
            ),
        }
    )
    df = simulate_history(cfg)
    per_customer_day = len(df) / (500 * 183)
    assert 1.8 < per_customer_day < 2.05  # the handbook: 1,754,155 / (5,000 x 183) = 1.92
    assert 0.004 < df[schema.TX_FRAUD].mean() < 0.03


@pytest.mark.parametrize(
    "drift", ["none", "new_fraud_pattern", "amount_inflation", "new_terminals"]
)
def test_production_continues_the_history(tiny: PipelineConfig, drift: str) -> None:
    prod_cfg = tiny.production.model_copy(update={"drift": drift})
    history = simulate_history(tiny.generate)
    prod = simulate_production(tiny.generate, prod_cfg)
    assert prod[schema.TRANSACTION_ID].min() == len(history)
    assert prod[schema.TX_DATETIME].min() > history[schema.TX_DATETIME].max()
    assert list(prod.columns) == list(schema.RAW_COLUMNS)


def test_drift_scenarios_change_what_they_name(tiny: PipelineConfig) -> None:
    def period(drift: str) -> pd.DataFrame:
        return simulate_production(
            tiny.generate, tiny.production.model_copy(update={"drift": drift})
        )

    base = period("none")
    assert (period("new_fraud_pattern")[schema.TX_FRAUD_SCENARIO] == 4).sum() > 0
    inflated = period("amount_inflation")[schema.TX_AMOUNT].mean()
    assert inflated == pytest.approx(base[schema.TX_AMOUNT].mean() * 1.5, rel=0.01)
    new_ids = period("new_terminals")[schema.TERMINAL_ID] >= tiny.generate.n_terminals
    assert 0.2 < new_ids.mean() < 0.4
    assert np.all(base[schema.TERMINAL_ID] < tiny.generate.n_terminals)
