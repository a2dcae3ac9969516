"""The DuckDB feature stage equals the handbook's pandas implementation, ties included."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import schema, stages
from pipelines.config import Features, PipelineConfig, load_pipeline_config
from pipelines.features import build_features, features_sql
from pipelines.generate import simulate_history
from pipelines.io import read_table, write_parquet
from pipelines.materialize import materialize
from pipelines.schema import DAY_US, feature_columns, reach_days
from serving.features import declared_matrix, epoch_us, feature_matrix, windows
from serving.store import Aggregates, Events, open_store
from tests.conftest import REPO_ROOT
from tests.pandas_features import build_features as oracle


def _with_ties_and_singletons(cfg: PipelineConfig) -> pd.DataFrame:
    df = simulate_history(cfg.generate)
    rng = np.random.default_rng(0)
    # Copy 200 rows to the same instant, same customer and terminal (exact ties), ...
    dupes = df.sample(200, random_state=1).copy()
    # ... and give 30 customers and 30 terminals a single transaction each.
    lonely = df.sample(30, random_state=2).copy()
    lonely[schema.CUSTOMER_ID] = 10_000 + np.arange(30)
    lonely[schema.TERMINAL_ID] = 10_000 + np.arange(30)
    out = pd.concat([df, dupes, lonely], ignore_index=True)
    out[schema.TRANSACTION_ID] = rng.permutation(len(out))  # ids need not follow time
    return out.sort_values(schema.TX_DATETIME, kind="stable").reset_index(drop=True)


def _duckdb(tmp_path: Path, df: pd.DataFrame, cfg: Features) -> pd.DataFrame:
    write_parquet(df, tmp_path / "clean.parquet")
    build_features(tmp_path / "clean.parquet", tmp_path / "features.parquet", cfg)
    return read_table(tmp_path / "features.parquet")


def _assert_equal(ours: pd.DataFrame, theirs: pd.DataFrame, columns: list[str]) -> None:
    assert ours[schema.TRANSACTION_ID].tolist() == theirs[schema.TRANSACTION_ID].tolist()
    for column in columns:
        np.testing.assert_allclose(
            ours[column].to_numpy(float),
            theirs[column].to_numpy(float),
            rtol=0,
            atol=1e-9,
            err_msg=column,
        )


def test_equal_to_the_pandas_oracle_within_1e_9(tiny: PipelineConfig, tmp_path: Path) -> None:
    df = _with_ties_and_singletons(tiny)
    f = tiny.features
    ours = _duckdb(tmp_path, df, f)
    theirs = oracle(
        df, f.label_delay_days, f.customer_windows_days, f.terminal_windows_days, f.night_max_hour
    )
    _assert_equal(ours, theirs, feature_columns(f))


def _tx(rows: list[tuple[str, int, int, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.TRANSACTION_ID: np.arange(len(rows), dtype=np.int64),
            schema.TX_DATETIME: pd.to_datetime([r[0] for r in rows]).astype("datetime64[us]"),
            schema.CUSTOMER_ID: [r[1] for r in rows],
            schema.TERMINAL_ID: [r[2] for r in rows],
            schema.TX_AMOUNT: [r[3] for r in rows],
            schema.TX_FRAUD: np.array([r[4] for r in rows], dtype=np.int8),
            schema.TX_FRAUD_SCENARIO: np.array([r[4] for r in rows], dtype=np.int8),
        }
    )


def test_ties_count_every_transaction_at_the_same_instant(
    tiny: PipelineConfig, tmp_path: Path
) -> None:
    df = _tx(
        [
            ("2018-04-01 10:00:00", 1, 1, 10.0, 0),
            ("2018-04-01 12:00:00", 1, 1, 20.0, 0),
            ("2018-04-01 12:00:00", 1, 1, 60.0, 0),  # same customer, same second
        ]
    )
    out = _duckdb(tmp_path, df, tiny.features).set_index(schema.TRANSACTION_ID)
    assert out["customer_id_nb_tx_1day_window"].tolist() == [1, 3, 3]
    assert out["customer_id_avg_amount_1day_window"].tolist() == [10.0, 30.0, 30.0]


def test_window_is_half_open_and_terminal_windows_are_delayed(
    tiny: PipelineConfig, tmp_path: Path
) -> None:
    df = _tx(
        [
            ("2018-04-01 12:00:00", 1, 5, 10.0, 1),
            ("2018-04-02 12:00:00", 1, 5, 30.0, 0),  # exactly one day later: first one drops out
            (
                "2018-04-09 12:00:00",
                2,
                5,
                50.0,
                0,
            ),  # 8 days later: sees day 1 in its delayed window
            ("2018-04-09 12:00:01", 2, 5, 50.0, 0),
        ]
    )
    out = _duckdb(tmp_path, df, tiny.features).set_index(schema.TRANSACTION_ID)
    assert out["customer_id_nb_tx_1day_window"].tolist() == [1, 1, 1, 2]
    assert out["customer_id_nb_tx_7day_window"].tolist() == [1, 2, 1, 2]
    # Terminal window for 1 day, delay 7: (t - 8d, t - 7d]. At 04-09 12:00:00 that is
    # (04-01 12:00, 04-02 12:00]: the second transaction only, which was not fraud.
    assert out.loc[2, "terminal_id_nb_tx_1day_window"] == 1
    assert out.loc[2, "terminal_id_risk_1day_window"] == 0.0
    # One second later the window (04-01 12:00:01, 04-02 12:00:01] still holds only it.
    assert out.loc[3, "terminal_id_nb_tx_7day_window"] == 2
    assert out.loc[3, "terminal_id_risk_7day_window"] == 0.5
    # Nothing known yet for the first transactions: zero counts and zero risk, not null.
    assert out.loc[0, "terminal_id_nb_tx_30day_window"] == 0
    assert out.loc[0, "terminal_id_risk_30day_window"] == 0.0


def test_calendar_features(tiny: PipelineConfig, tmp_path: Path) -> None:
    df = _tx(
        [
            ("2018-04-07 06:59:59", 1, 1, 1.0, 0),  # Saturday, night (hour 6)
            ("2018-04-09 07:00:00", 1, 1, 1.0, 0),  # Monday, day
        ]
    )
    out = _duckdb(tmp_path, df, tiny.features)
    assert out["tx_during_weekend"].tolist() == [1, 0]
    assert out["tx_during_night"].tolist() == [1, 0]


def test_stage_writes_features_and_metrics(tiny: PipelineConfig) -> None:
    stages.generate(tiny)
    stages.validate(tiny)
    out = read_table(stages.features(tiny))
    assert list(out.columns[: len(schema.RAW_COLUMNS)]) == list(schema.RAW_COLUMNS)
    assert set(feature_columns(tiny.features)) <= set(out.columns)
    assert not out[feature_columns(tiny.features)].isna().any().any()
    assert (tiny.paths.metrics / "features.json").exists()


@pytest.mark.parametrize("delay", [0, 3])
def test_other_delays_match_the_oracle(tiny: PipelineConfig, tmp_path: Path, delay: int) -> None:
    f = tiny.features.model_copy(
        update={"label_delay_days": delay, "terminal_windows_days": [2, 5]}
    )
    df = simulate_history(tiny.generate)
    ours = _duckdb(tmp_path, df, f)
    theirs = oracle(df, delay, f.customer_windows_days, f.terminal_windows_days)
    _assert_equal(ours, theirs, feature_columns(f))


@pytest.mark.parametrize(
    ("customer", "terminal"), [([1, 7], []), ([], [7, 14]), ([], [])], ids=["c", "t", "none"]
)
def test_a_group_can_be_turned_off_offline_and_online(
    tiny: PipelineConfig, tmp_path: Path, customer: list[int], terminal: list[int]
) -> None:
    f = tiny.features.model_copy(
        update={"customer_windows_days": customer, "terminal_windows_days": terminal}
    )
    df = simulate_history(tiny.generate)
    ours = _duckdb(tmp_path, df, f)
    names = feature_columns(f)
    windowed = [c for c in ours.columns if c.endswith("day_window")]
    assert sorted(windowed) == sorted(names[3:])  # only the configured groups' columns
    theirs = oracle(df, f.label_delay_days, customer, terminal, f.night_max_hour)
    _assert_equal(ours, theirs, names)
    # Online: an entity with no history, in a world with these groups only.
    none = Aggregates(
        np.zeros((1, len(customer)), np.int64),
        np.zeros((1, len(customer))),
        np.zeros((1, len(terminal)), np.int64),
        np.zeros((1, len(terminal)), np.int64),
    )
    t = epoch_us([dt.datetime(2018, 4, 7, 3)])
    row = feature_matrix(t, np.array([10.0]), none, f)
    assert row.shape == (1, len(names))
    assert windows(f).customer_reach_us == max(customer, default=0) * DAY_US
    assert reach_days(f) == max([*customer, *(f.label_delay_days + w for w in terminal)], default=0)


HANDBOOK_FEATURES = [
    "tx_amount",
    "tx_during_weekend",
    "tx_during_night",
    "customer_id_nb_tx_1day_window",
    "customer_id_avg_amount_1day_window",
    "customer_id_nb_tx_7day_window",
    "customer_id_avg_amount_7day_window",
    "customer_id_nb_tx_30day_window",
    "customer_id_avg_amount_30day_window",
    "terminal_id_nb_tx_1day_window",
    "terminal_id_risk_1day_window",
    "terminal_id_nb_tx_7day_window",
    "terminal_id_risk_7day_window",
    "terminal_id_nb_tx_30day_window",
    "terminal_id_risk_30day_window",
]


def test_without_amount_ratios_the_features_are_the_handbooks_15(tiny: PipelineConfig) -> None:
    f = tiny.features.model_copy(update={"customer_amount_ratio": False})
    assert feature_columns(f) == HANDBOOK_FEATURES
    assert len(feature_columns(tiny.features)) == 18  # the default adds three amount ratios


def _oracle_of(df: pd.DataFrame, f: Features) -> pd.DataFrame:
    """The pandas oracle's features of `df` under the declaration's windows."""
    return oracle(
        df,
        f.label_delay_days,
        f.customer_windows_days,
        f.terminal_windows_days,
        f.night_max_hour,
        amount_ratio=f.customer_amount_ratio,
    )


def _replay_last_day(tmp_path: Path, df: pd.DataFrame, f: Features) -> pd.DataFrame:
    """The last day's transactions through the online path (store seeded like serving's,
    then one batch in time order): the model's input rows, indexed by transaction id."""
    write_parquet(df, tmp_path / "clean.parquet")
    day = df[schema.TX_DATETIME].max().normalize()
    materialize(tmp_path / "clean.parquet", tmp_path / "seed", f, as_of=day.to_pydatetime())
    replay = df[df[schema.TX_DATETIME] >= day].sort_values(
        [schema.TX_DATETIME, schema.TRANSACTION_ID]
    )
    events = Events(
        replay[schema.TRANSACTION_ID].to_numpy(np.int64),
        replay[schema.CUSTOMER_ID].to_numpy(np.int64),
        replay[schema.TERMINAL_ID].to_numpy(np.int64),
        replay[schema.TX_DATETIME].to_numpy("datetime64[us]").astype(np.int64),
        replay[schema.TX_AMOUNT].to_numpy(np.float64),
        np.zeros(len(replay), dtype=np.int64),
    )
    declared = declared_matrix(replay.to_dict("records"), f)  # what requests send
    store = open_store("sqlite", tmp_path / "online.db", None, windows(f))
    try:
        store.seed(tmp_path / "seed")
        agg = store.add_and_read(events)
        x = feature_matrix(events.ts_us, events.amount, agg, f, declared)
    finally:
        store.close()
    return pd.DataFrame(x, columns=feature_columns(f), index=events.transaction_id)


@pytest.mark.parametrize("ratio", [True, False], ids=["with_ratios", "handbook_15"])
def test_online_features_equal_offline_with_and_without_amount_ratios(
    tiny: PipelineConfig, tmp_path: Path, ratio: bool
) -> None:
    f = tiny.features.model_copy(update={"customer_amount_ratio": ratio})
    df = simulate_history(tiny.generate)
    offline = _duckdb(tmp_path, df, f).set_index(schema.TRANSACTION_ID)
    names = feature_columns(f)
    assert ("customer_id_amount_ratio_1day_window" in offline.columns) is ratio
    theirs = _oracle_of(df, f)
    _assert_equal(offline.reset_index(), theirs, names)
    online = _replay_last_day(tmp_path, df, f)
    assert len(online) > 100
    expected = offline.loc[online.index, names].astype(float)
    np.testing.assert_allclose(online.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9)


TYPES = ["PAYMENT", "TRANSFER", "CASH_OUT", "DEBIT", "CASH_IN"]
MOBILE_MONEY = {
    "hour_of_day": True,
    "customer_since_previous_days": 30,
    "terminal_since_previous_days": 2,
    "columns": [
        {"name": "type", "kind": "categorical", "categories": TYPES},
        {"name": "oldbalanceOrg", "kind": "numeric", "min": 0},
        {"name": "newbalanceOrig", "kind": "numeric"},
    ],
}


def _mobile_money(cfg: PipelineConfig) -> pd.DataFrame:
    """The simulator's history shaped like mobile money: times in whole hours (many ties),
    a transaction type, balances (one negative: `newbalanceOrig` has no bounds)."""
    df = _with_ties_and_singletons(cfg)
    rng = np.random.default_rng(7)
    df[schema.TX_DATETIME] = df[schema.TX_DATETIME].dt.floor("h")
    df["type"] = pd.array(rng.choice(TYPES, len(df)), dtype="string")
    df["oldbalanceOrg"] = rng.exponential(1_000.0, len(df)).round(2)
    df["newbalanceOrig"] = df["oldbalanceOrg"] - df[schema.TX_AMOUNT]
    return df.sort_values(schema.TX_DATETIME, kind="stable").reset_index(drop=True)


def test_declared_columns_are_features_offline_and_online(
    tiny: PipelineConfig, tmp_path: Path
) -> None:
    """A mobile-money declaration (hour, a categorical type, balances): the DuckDB stage and
    the online path agree to 1e-9 on a replayed day, ties included; each kind means what it
    says."""
    f = Features.model_validate({**tiny.features.model_dump(), **MOBILE_MONEY})
    df = _mobile_money(tiny)
    names = feature_columns(f)
    flags = [f"type_is_{t}" for t in TYPES]
    declared = ["tx_hour", *flags, "oldbalanceOrg", "newbalanceOrig"]
    assert schema.transaction_columns(f) == declared
    assert names[: 3 + len(declared)] == [*HANDBOOK_FEATURES[:3], *declared]
    offline = _duckdb(tmp_path, df, f).set_index(schema.TRANSACTION_ID)
    source = df.set_index(schema.TRANSACTION_ID).loc[offline.index]
    assert (offline["tx_hour"] == source[schema.TX_DATETIME].dt.hour).all()
    for t, flag in zip(TYPES, flags, strict=True):
        assert (offline[flag] == (source["type"] == t).astype(int)).all(), flag
    assert (offline["newbalanceOrig"] == source["newbalanceOrig"]).all()
    # The window features are the declaration's windows, unchanged by the new columns.
    theirs = _oracle_of(df, f)
    windowed = [c for c in names if c.endswith("day_window")]
    _assert_equal(offline.reset_index(), theirs, windowed)
    online = _replay_last_day(tmp_path, df, f)
    assert len(online) > 100
    expected = offline.loc[online.index, names].astype(float)
    np.testing.assert_allclose(online.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9)


def test_days_since_previous_is_strictly_before_and_capped(
    tiny: PipelineConfig, tmp_path: Path
) -> None:
    """The latest other transaction of the customer strictly before t (an earlier one at the
    same instant does not count), capped at the declared days (the cap when none)."""
    f = tiny.features.model_copy(
        update={"customer_since_previous_days": 3, "terminal_since_previous_days": 0}
    )
    df = _tx(
        [
            ("2018-04-01 10:00", 1, 1, 5.0, 0),
            ("2018-04-02 10:00", 1, 1, 5.0, 0),  # 1 day after the first
            ("2018-04-02 10:00", 1, 1, 5.0, 0),  # tied with it: 1 day too
            ("2018-04-06 10:00", 1, 1, 5.0, 0),  # 4 days later: capped at 3
            ("2018-04-06 16:00", 2, 1, 5.0, 0),  # another customer: none, 3
        ]
    )
    out = _duckdb(tmp_path, df, f).sort_values(schema.TRANSACTION_ID)
    assert out["customer_id_days_since_previous_tx"].tolist() == [3.0, 1.0, 1.0, 3.0, 3.0]
    assert "terminal_id_days_since_previous_tx" not in out.columns
    assert feature_columns(f)[-1] == "customer_id_days_since_previous_tx"


# sha256 of the default declaration's statement: the DuckDB path's SQL text (and with it the
# bytes of the features parquet that dvc.lock records) changes only on purpose.
DEFAULT_SQL_SHA256 = "fd0eb2f58d674f6ac19a2598cb20965cb9ef5e927fbc547727637b5612dcd6ed"


def test_the_default_duckdb_statement_is_unchanged() -> None:
    f = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml").features
    sql = features_sql(f, "read_parquet('data/processed/transactions.parquet')")
    assert hashlib.sha256(sql.encode()).hexdigest() == DEFAULT_SQL_SHA256


def test_the_duckdb_engine_imports_neither_pyspark_nor_sqlglot(
    tiny: PipelineConfig, tmp_path: Path
) -> None:
    """pipelines/spark.py imports PySpark only inside its functions, and only the Spark
    engine calls them: a DuckDB run (and importing the modules) loads neither library."""
    write_parquet(simulate_history(tiny.generate), tmp_path / "clean.parquet")
    code = (
        "import sys; from pathlib import Path; import pipelines.spark, pipelines.stages; "
        "from pipelines.config import Features; from pipelines.features import build_features; "
        f"f = Features.model_validate_json({tiny.features.model_dump_json()!r}); "
        f"build_features(Path({str(tmp_path / 'clean.parquet')!r}), "
        f"Path({str(tmp_path / 'out.parquet')!r}), f); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyspark', 'py4j', 'sqlglot'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
