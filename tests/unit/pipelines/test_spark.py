"""The `features` stage on Spark SQL (local[2]) writes DuckDB's feature table: the same
columns, types and rows, values within 1e-9, ties and window boundaries included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import schema, spark, stages
from pipelines.config import Engine, Features, PipelineConfig, load_pipeline_config
from pipelines.features import build_features
from pipelines.generate import simulate_history
from pipelines.io import write_parquet
from tests.conftest import REPO_ROOT
from tests.unit.pipelines.test_features import MOBILE_MONEY, _mobile_money

pytestmark = pytest.mark.spark

DUCKDB = Engine()
SPARK = Engine(kind="spark", spark_conf={"spark.sql.shuffle.partitions": "4"})
SAMPLE_EVERY = 6  # customers: a sixth of the default world (about 290,000 transactions)


@pytest.fixture(scope="module")
def session() -> Iterator[object]:
    """One local[2] session for the module: the stage uses the active one and keeps it."""
    with spark.session(SPARK) as active:
        yield active


def _both(tmp_path: Path, df: pd.DataFrame, cfg: Features) -> tuple[pa.Table, pa.Table]:
    """The feature tables DuckDB and Spark write from the same clean parquet (microsecond
    times, as `validate` writes them: Spark reads no nanosecond timestamps)."""
    write_parquet(df.astype({schema.TX_DATETIME: "datetime64[us]"}), tmp_path / "clean.parquet")
    out = {}
    for engine in (DUCKDB, SPARK):
        path = tmp_path / f"{engine.kind}.parquet"
        assert build_features(tmp_path / "clean.parquet", path, cfg, engine) == len(df)
        out[engine.kind] = pq.read_table(path)
    return out["duckdb"], out["spark"]


def assert_same_table(duck: pa.Table, other: pa.Table) -> None:
    """Same column names and types in order, same rows in order; integers, flags and times
    exactly, floats within 1e-9 (nullability flags and file metadata aside)."""
    assert [(f.name, f.type) for f in other.schema] == [(f.name, f.type) for f in duck.schema]
    assert other.num_rows == duck.num_rows
    for name in duck.column_names:
        ours, theirs = duck[name].to_numpy(), other[name].to_numpy()
        if pa.types.is_floating(duck.schema.field(name).type):
            np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-9, err_msg=name)
        else:
            assert (theirs == ours).all(), name


def _boundary_ties(df: pd.DataFrame, cfg: Features, rng: np.random.Generator) -> pd.DataFrame:
    """Copies of sampled transactions at the same instant (same customer and terminal) and
    exactly one window length later, for every window edge (customer w, terminal d and d + w):
    at exactly t - w a transaction is outside the window, at t it is inside."""
    d = cfg.label_delay_days
    edges = {*cfg.customer_windows_days, d, *(d + w for w in cfg.terminal_windows_days)}
    copies = [df.sample(300, random_state=10)]
    for i, days in enumerate(sorted(edges)):
        later = df.sample(100, random_state=20 + i).copy()
        later[schema.TX_DATETIME] += pd.Timedelta(days=days)
        copies += [later, later.copy()]  # a tie at the edge too
    out = pd.concat([df, *copies], ignore_index=True)
    out[schema.TRANSACTION_ID] = rng.permutation(len(out))
    return out.sort_values(schema.TX_DATETIME, kind="stable").reset_index(drop=True)


def test_spark_equals_duckdb_on_a_sample_of_the_default_data_with_ties(
    session: object, tmp_path: Path
) -> None:
    """The default feature set (18 features) on a sixth of the default world's customers."""
    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml")
    history = simulate_history(cfg.generate)
    sample = history[history[schema.CUSTOMER_ID] % SAMPLE_EVERY == 0]
    df = _boundary_ties(sample, cfg.features, np.random.default_rng(0))
    assert 250_000 < len(df) < 400_000
    duck, other = _both(tmp_path, df, cfg.features)
    assert_same_table(duck, other)
    counts = duck["customer_id_nb_tx_1day_window"].to_numpy()
    assert (counts >= 2).sum() > 1_000  # the ties are there and counted


def test_spark_equals_duckdb_on_mobile_money_declarations(
    session: object, tiny: PipelineConfig, tmp_path: Path
) -> None:
    """Hourly times (many ties), a categorical type, balances, the hour of day and the days
    since the previous transaction of the customer and of the terminal."""
    f = Features.model_validate({**tiny.features.model_dump(), **MOBILE_MONEY})
    duck, other = _both(tmp_path, _mobile_money(tiny), f)
    assert set(schema.feature_columns(f)) <= set(duck.column_names)
    assert_same_table(duck, other)


def test_the_stage_on_spark_writes_what_it_writes_on_duckdb(
    session: object, tiny: PipelineConfig
) -> None:
    stages.generate(tiny)
    stages.validate(tiny)
    duck = pq.read_table(stages.features(tiny))
    on_spark = tiny.model_copy(update={"engine": SPARK})
    other = pq.read_table(stages.features(on_spark))
    assert_same_table(duck, other)
