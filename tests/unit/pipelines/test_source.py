"""Sources by configuration: a PaySim-shaped file (hour steps, string ids, no transaction id,
columns the contract does not use) reaches the contract by `source:` options alone."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines import schema
from pipelines.config import Source
from pipelines.errors import ConfigError, DataContractError
from pipelines.source import convert, dropped_columns, load_source, offsets, stable_id
from pipelines.validate import validate_transactions
from tests.conftest import tiny_config

ORIGIN = dt.datetime(2024, 1, 1)
PAYSIM_MAP = {
    "step": schema.TX_DATETIME,
    "nameOrig": schema.CUSTOMER_ID,
    "nameDest": schema.TERMINAL_ID,
    "amount": schema.TX_AMOUNT,
    "isFraud": schema.TX_FRAUD,
}
PAYSIM_UNUSED = [  # sorted, as the warning names them
    "isFlaggedFraud",
    "newbalanceDest",
    "newbalanceOrig",
    "oldbalanceDest",
    "oldbalanceOrg",
    "type",
]


def paysim(n_rows: int = 300, seed: int = 7) -> pd.DataFrame:
    """A small file in the public PaySim schema: `step` is the hour, from 1, over 3 days."""
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 150.0, n_rows).round(2)
    old_orig = rng.uniform(0, 5_000, n_rows).round(2)
    old_dest = rng.uniform(0, 50_000, n_rows).round(2)
    fraud = (rng.random(n_rows) < 0.05).astype("int64")
    return pd.DataFrame(
        {
            "step": np.sort(rng.integers(1, 73, n_rows)),
            "type": rng.choice(["PAYMENT", "TRANSFER", "CASH_OUT", "DEBIT", "CASH_IN"], n_rows),
            "amount": amount,
            "nameOrig": [f"C{i}" for i in rng.integers(1_000_000_000, 1_000_000_040, n_rows)],
            "oldbalanceOrg": old_orig,
            "newbalanceOrig": np.maximum(old_orig - amount, 0).round(2),
            "nameDest": [f"M{i}" for i in rng.integers(1_900_000_000, 1_900_000_060, n_rows)],
            "oldbalanceDest": old_dest,
            "newbalanceDest": (old_dest + amount).round(2),
            "isFraud": fraud,
            "isFlaggedFraud": 0,
        }
    )


def paysim_source(path: Path) -> Source:
    """The PaySim `source:` of the README's own-data section."""
    return Source(
        kind="file",
        path=path,
        column_map=PAYSIM_MAP,
        timestamp_format="offset",
        timestamp_origin=ORIGIN,
        timestamp_unit="hours",
        hashed_ids=["customer_id", "terminal_id"],
        transaction_id="row_number",
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_paysim_file_reaches_the_contract_by_configuration(
    tmp_path: Path, suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    theirs = paysim()
    path = tmp_path / f"paysim{suffix}"
    theirs.to_csv(path, index=False) if suffix == ".csv" else theirs.to_parquet(path)
    with caplog.at_level(logging.WARNING, logger="pipelines.source"):
        got = load_source(paysim_source(path))

    assert list(got.columns) == list(schema.RAW_COLUMNS)
    np.testing.assert_array_equal(got[schema.TRANSACTION_ID], np.arange(len(theirs)))
    hours = pd.to_timedelta(theirs["step"], unit="h")
    assert (got[schema.TX_DATETIME] == pd.Timestamp(ORIGIN) + hours).all()
    assert got[schema.TX_DATETIME].dtype == "datetime64[us]"
    assert got[schema.TX_DATETIME].min() >= pd.Timestamp("2024-01-01 01:00")  # step 1
    assert (got[schema.CUSTOMER_ID] == theirs["nameOrig"].map(stable_id)).all()
    assert (got[schema.TERMINAL_ID] == theirs["nameDest"].map(stable_id)).all()
    np.testing.assert_array_equal(got[schema.TX_AMOUNT], theirs["amount"])
    np.testing.assert_array_equal(got[schema.TX_FRAUD], theirs["isFraud"])
    assert (got[schema.TX_FRAUD_SCENARIO] == 0).all()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "source: dropping 6 column(s) neither in the contract nor in features.columns: "
        + ", ".join(PAYSIM_UNUSED)
    ]

    result = validate_transactions(got, tiny_config(tmp_path).validate_)
    assert result.quarantine.empty
    assert len(result.clean) == len(theirs)


def test_generated_ids_are_file_positions_that_appended_rows_keep(tmp_path: Path) -> None:
    theirs = paysim()
    path = tmp_path / "paysim.parquet"
    theirs.head(200).to_parquet(path)
    first = load_source(paysim_source(path))
    pd.testing.assert_frame_equal(first, load_source(paysim_source(path)))  # deterministic
    theirs.to_parquet(path)  # 100 rows appended at the end
    longer = load_source(paysim_source(path))
    pd.testing.assert_frame_equal(longer.head(200), first)
    assert longer[schema.TRANSACTION_ID].dtype == "int64"
    assert longer[schema.TRANSACTION_ID].tolist() == list(range(300))


def test_generated_ids_refuse_a_file_that_has_them(tmp_path: Path) -> None:
    path = tmp_path / "paysim.csv"
    paysim().assign(transaction_id=1).to_csv(path, index=False)
    with pytest.raises(
        DataContractError, match=r"has a transaction_id column; source\.transaction_id row_number"
    ):
        load_source(paysim_source(path))


def test_a_file_without_ids_is_told_about_row_number(tmp_path: Path) -> None:
    path = tmp_path / "paysim.csv"
    paysim().to_csv(path, index=False)
    source = paysim_source(path).model_copy(update={"transaction_id": "column"})
    with pytest.raises(DataContractError) as err:
        load_source(source)
    assert "missing required column(s) transaction_id" in str(err.value)
    assert "set source.transaction_id: row_number" in str(err.value)


def test_dropped_columns_are_those_outside_keep() -> None:
    columns = ["zeta", schema.TX_AMOUNT, "alpha", schema.TRANSACTION_ID]
    assert dropped_columns(columns, set(schema.RAW_COLUMNS)) == ["alpha", "zeta"]
    assert dropped_columns(columns, {*schema.RAW_COLUMNS, "zeta"}) == ["alpha"]
    assert dropped_columns(schema.RAW_COLUMNS, set(schema.RAW_COLUMNS)) == []


def _offsets(values: list[Any], origin: str = "2024-01-01", unit: Any = "hours") -> list[Any]:
    got = offsets(pd.Series(values), dt.datetime.fromisoformat(origin), unit)
    assert got.dtype == "datetime64[us]"
    return [None if pd.isna(v) else v for v in got]


@pytest.mark.parametrize(
    ("unit", "one"),
    [
        ("days", "2024-01-02"),
        ("hours", "2024-01-01 01:00"),
        ("minutes", "2024-01-01 00:01"),
        ("seconds", "2024-01-01 00:00:01"),
        ("ms", "2024-01-01 00:00:00.001"),
        ("us", "2024-01-01 00:00:00.000001"),
    ],
)
def test_offset_one_is_one_unit_after_the_origin(unit: str, one: str) -> None:
    assert _offsets([0, 1], unit=unit) == [pd.Timestamp("2024-01-01"), pd.Timestamp(one)]


def test_offsets_float_negative_and_time_of_day() -> None:
    assert _offsets([1.5, 0.25, -1, -0.5]) == [
        pd.Timestamp("2024-01-01 01:30"),
        pd.Timestamp("2024-01-01 00:15"),
        pd.Timestamp("2023-12-31 23:00"),
        pd.Timestamp("2023-12-31 23:30"),
    ]
    assert _offsets([1, 24], origin="2024-01-01T06:30") == [
        pd.Timestamp("2024-01-01 07:30"),
        pd.Timestamp("2024-01-02 06:30"),
    ]
    # A zoned origin is the instant it names, as naive UTC.
    assert _offsets([0], origin="2024-01-01T02:00+02:00") == [pd.Timestamp("2024-01-01")]
    assert _offsets([1e-6], unit="seconds") == [pd.Timestamp("2024-01-01 00:00:00.000001")]


def test_offsets_beyond_datetime64_become_null_and_integers_stay_exact() -> None:
    big = 2**62 + 1  # not exact in float64
    assert _offsets([big], origin="1970-01-01", unit="us") == [pd.Timestamp(big, unit="us")]
    edge = int(np.iinfo(np.int64).max)
    assert _offsets([edge, -edge], origin="1970-01-01", unit="us") == [
        np.datetime64(edge, "us"),
        np.datetime64(-edge, "us"),
    ]
    assert _offsets([edge], origin="1970-01-01T00:00:00.000001", unit="us") == [None]
    assert _offsets([10**17, -(10**17), 1]) == [None, None, pd.Timestamp("2024-01-01 01:00")]
    assert _offsets([1e300, float("inf"), float("nan"), "soon", 2.0]) == [
        None,
        None,
        None,
        None,
        pd.Timestamp("2024-01-01 02:00"),
    ]


def test_epochs_are_offsets_from_1970(tmp_path: Path) -> None:
    source = Source(kind="file", path=tmp_path / "x.csv", timestamp_format="epoch_ms")
    frame = pd.DataFrame({c: [1] for c in schema.RAW_COLUMNS})
    frame[schema.TX_DATETIME] = [1_704_067_200_000]
    got = convert(frame, source)
    assert got[schema.TX_DATETIME].iloc[0] == pd.Timestamp("2024-01-01")


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"timestamp_format": "offset"}, "offset needs source.timestamp_origin"),
        (
            {"timestamp_format": "offset", "timestamp_origin": "2024-01-01"},
            "and source.timestamp_unit (days | hours | minutes | seconds | ms | us)",
        ),
        ({"timestamp_origin": "2024-01-01"}, "timestamp_origin applies only with"),
        (
            {"timestamp_format": "epoch_s", "timestamp_unit": "hours"},
            "timestamp_unit applies only with source.timestamp_format offset, not 'epoch_s'",
        ),
        ({"timestamp_format": "offset", "timestamp_unit": "weeks"}, "timestamp_unit"),
        ({"timestamp_format": "hours"}, "one of epoch_s, epoch_ms, epoch_us or offset"),
        ({"timestamp_origin": 2024}, "must be a date or datetime"),
        ({"timestamp_origin": "20240101"}, "must be a date or datetime"),
        ({"transaction_id": "generate"}, "transaction_id"),
        (
            {"transaction_id": "row_number", "column_map": {"ref": "transaction_id"}},
            "row_number generates the id, but source.column_map maps 'ref' to it",
        ),
        (
            {"transaction_id": "row_number", "hashed_ids": ["transaction_id"]},
            "row_number generates the id, but source.hashed_ids lists it",
        ),
    ],
)
def test_bad_source_options_are_one_line(
    tmp_path: Path, update: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        tiny_config(tmp_path, **{f"source.{k}": v for k, v in update.items()})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_the_paysim_options_validate_through_the_config(tmp_path: Path) -> None:
    cfg = tiny_config(
        tmp_path,
        **{
            "source.kind": "file",
            "source.path": str(tmp_path / "paysim.csv"),
            "source.timestamp_format": "offset",
            "source.timestamp_origin": "2024-01-01",  # as --set passes it
            "source.timestamp_unit": "hours",
            "source.transaction_id": "row_number",
        },
    )
    assert cfg.source.timestamp_origin == ORIGIN
    assert cfg.source.transaction_id == "row_number"
