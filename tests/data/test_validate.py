"""The data contract: a corrupted batch is split, never lost; rows in = clean + quarantined."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import schema, stages
from pipelines.config import Features, PipelineConfig
from pipelines.errors import DataContractError, QuarantineLimitError
from pipelines.generate import simulate_history
from pipelines.io import read_table, write_parquet
from pipelines.validate import REASON, SOURCE_ROW, validate_transactions
from tests.conftest import tiny_config

CORRUPTIONS: dict[int, tuple[str, object, str]] = {
    0: (schema.TX_AMOUNT, -5.0, "greater_than_or_equal_to(0)"),
    1: (schema.TX_AMOUNT, "12,50", "not a valid float64"),
    2: (schema.TX_DATETIME, "yesterday", "not a valid datetime"),
    3: (schema.CUSTOMER_ID, None, "not_nullable"),
    4: (schema.TX_DATETIME, pd.Timestamp("1990-01-01"), "in_range"),
    5: (schema.TX_AMOUNT, np.inf, "finite"),
    6: (schema.TX_FRAUD, 2, "isin"),
    7: (schema.TERMINAL_ID, "T-17", "not a valid int64"),
}


def _corrupted(cfg: PipelineConfig) -> pd.DataFrame:
    df = simulate_history(cfg.generate).astype(object)
    for row, (column, value, _) in CORRUPTIONS.items():
        df.loc[row, column] = value
    df.loc[9, schema.TRANSACTION_ID] = df.loc[8, schema.TRANSACTION_ID]  # duplicate id
    return df


def test_corrupted_batch_rows_in_equal_clean_plus_quarantined(tiny: PipelineConfig) -> None:
    raw = _corrupted(tiny)
    result = validate_transactions(raw, tiny.validate_)
    assert len(result.clean) + len(result.quarantine) == len(raw)
    assert result.counts["rows_quarantined"] == len(CORRUPTIONS) + 1
    reasons = dict(zip(result.quarantine[SOURCE_ROW], result.quarantine[REASON], strict=True))
    for row, (column, _, check) in CORRUPTIONS.items():
        assert reasons[row].startswith(f"{column}: "), reasons[row]
        assert check in reasons[row]
    assert "field_uniqueness" in reasons[9]  # the later duplicate goes, the first stays
    assert 8 not in reasons


def test_clean_rows_have_the_contract_types(tiny: PipelineConfig) -> None:
    result = validate_transactions(_corrupted(tiny), tiny.validate_)
    assert result.clean.dtypes.astype(str).to_dict() == schema.RAW_DTYPES
    assert result.clean[schema.TRANSACTION_ID].is_unique


def test_quarantine_keeps_the_original_values(tiny: PipelineConfig) -> None:
    result = validate_transactions(_corrupted(tiny), tiny.validate_)
    row = result.quarantine.set_index(SOURCE_ROW).loc[1]
    assert row[schema.TX_AMOUNT] == "12,50"


def test_a_clean_batch_passes_whole(tiny: PipelineConfig) -> None:
    raw = simulate_history(tiny.generate)
    result = validate_transactions(raw, tiny.validate_)
    assert result.quarantine.empty
    pd.testing.assert_frame_equal(result.clean, raw)


def test_stage_fails_above_the_limit_and_leaves_no_clean_output(tiny: PipelineConfig) -> None:
    write_parquet(_corrupted(tiny).astype(str), tiny.paths.raw)
    strict = tiny.model_copy(
        update={"validate_": tiny.validate_.model_copy(update={"max_quarantine_share": 0.0})}
    )
    with pytest.raises(QuarantineLimitError, match=r"rows quarantined .* above validate\."):
        stages.validate(strict)
    assert not tiny.paths.clean.exists()
    assert len(read_table(tiny.paths.quarantine)) >= len(CORRUPTIONS)


def test_stage_within_the_limit_writes_both_files(tiny: PipelineConfig) -> None:
    write_parquet(_corrupted(tiny).astype(str), tiny.paths.raw)
    stages.validate(tiny)
    clean, quarantine = read_table(tiny.paths.clean), read_table(tiny.paths.quarantine)
    assert len(clean) + len(quarantine) == len(read_table(tiny.paths.raw))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_unreadable_raw_file_is_one_clear_error(tiny: PipelineConfig, damage: str) -> None:
    stages.generate(tiny)
    data = tiny.paths.raw.read_bytes()
    tiny.paths.raw.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"not parquet", "empty": b""}[damage]
    )
    with pytest.raises(DataContractError, match=f"{tiny.paths.raw}: cannot read"):
        stages.validate(tiny)
    assert not tiny.paths.clean.exists()


def test_missing_raw_file(tiny: PipelineConfig, tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match="file not found"):
        stages.validate(tiny)


FAR = {3: dt.datetime(1500, 1, 1), 7: dt.datetime(2500, 6, 1, 12)}


def _far_source(tmp_path: Path, variant: str) -> tuple[Path, str | None]:
    """A user's file of 60 rows whose rows 3 and 7 are in 1500 and 2500, as `variant` writes
    timestamps; returns the file and its `source.timestamp_format`."""
    df = simulate_history(tiny_config(tmp_path).generate).head(60)
    stamps = df[schema.TX_DATETIME].astype(object)
    for row, when in FAR.items():
        stamps[row] = when
    kind, _, unit = variant.partition("_")
    if kind == "parquet":  # timestamp[unit] columns, as other tools write them
        table = pa.Table.from_pandas(df, preserve_index=False)
        column = pa.array(stamps.tolist(), pa.timestamp(unit))
        table = table.set_column(table.schema.get_field_index(schema.TX_DATETIME), "t", column)
        path = tmp_path / "theirs.parquet"
        pq.write_table(table.rename_columns(list(df.columns)), path)
        return path, None
    path = tmp_path / "theirs.csv"
    if kind == "epoch":
        scale = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
        epoch = dt.datetime(1970, 1, 1)
        seconds = [(w - epoch) // dt.timedelta(microseconds=1) * scale // 10**6 for w in stamps]
        df.assign(**{schema.TX_DATETIME: seconds}).to_csv(path, index=False)
        return path, f"epoch_{unit}"
    fmt = "%d/%m/%Y %H:%M:%S" if unit == "strftime" else None
    text = [w.strftime(fmt or "%Y-%m-%d %H:%M:%S") for w in stamps]
    df.assign(**{schema.TX_DATETIME: text}).to_csv(path, index=False)
    return path, fmt


@pytest.mark.parametrize(
    "variant",
    ["parquet_us", "parquet_ms", "parquet_s", "csv_text", "csv_strftime", "epoch_s", "epoch_us"],
)
def test_far_timestamps_are_quarantined_with_their_value(tmp_path: Path, variant: str) -> None:
    path, fmt = _far_source(tmp_path, variant)
    cfg = tiny_config(
        tmp_path,
        **{"source.kind": "file", "source.path": str(path), "source.timestamp_format": fmt},
        **{"validate.max_quarantine_share": 0.5},
    )
    stages.generate(cfg)
    stages.validate(cfg)
    clean, quarantine = read_table(cfg.paths.clean), read_table(cfg.paths.quarantine)
    assert len(clean) + len(quarantine) == 60
    reasons = dict(zip(quarantine[SOURCE_ROW], quarantine[REASON], strict=True))
    assert sorted(reasons) == sorted(FAR)
    for row, when in FAR.items():
        assert reasons[row].startswith(f"{schema.TX_DATETIME}: in_range("), reasons[row]
        assert f"({when:%Y-%m-%d %H:%M:%S})" in reasons[row]
    assert clean.dtypes.astype(str).to_dict() == schema.RAW_DTYPES


@pytest.mark.parametrize("fmt", [None, "%Y-%m-%d %H:%M:%S"])
def test_unparseable_text_timestamp_is_quarantined(tmp_path: Path, fmt: str | None) -> None:
    df = simulate_history(tiny_config(tmp_path).generate).head(20).astype({"tx_datetime": str})
    df.loc[5, schema.TX_DATETIME] = "soon"
    df.to_csv(tmp_path / "theirs.csv", index=False)
    cfg = tiny_config(
        tmp_path,
        **{"source.kind": "file", "source.path": str(tmp_path / "theirs.csv")},
        **{"source.timestamp_format": fmt, "validate.max_quarantine_share": 0.5},
    )
    stages.generate(cfg)
    stages.validate(cfg)
    quarantine = read_table(cfg.paths.quarantine)
    assert quarantine[SOURCE_ROW].tolist() == [5]
    assert quarantine[REASON].iloc[0].startswith(f"{schema.TX_DATETIME}: ")


def test_timestamps_in_mixed_forms_are_read_row_by_row(tiny: PipelineConfig) -> None:
    raw = simulate_history(tiny.generate).head(4).astype(object)
    raw[schema.TX_DATETIME] = ["2018-04-01 10:00:00", "2018-04-02", "2018-04-03T10:00+02:00", "x"]
    result = validate_transactions(raw, tiny.validate_)
    assert result.clean[schema.TX_DATETIME].astype(str).tolist() == [
        "2018-04-01 10:00:00",
        "2018-04-02 00:00:00",
        "2018-04-03 08:00:00",
    ]
    assert result.quarantine[REASON].tolist() == ["tx_datetime: not a valid datetime64[us] (x)"]


def test_zero_raw_rows_is_one_clear_error(tiny: PipelineConfig) -> None:
    write_parquet(simulate_history(tiny.generate).head(0), tiny.paths.raw)
    with pytest.raises(DataContractError, match=f"{tiny.paths.raw}: has no rows"):
        stages.validate(tiny)


def test_every_row_quarantined_fails_even_within_the_limit(tiny: PipelineConfig) -> None:
    raw = simulate_history(tiny.generate).head(30).assign(tx_amount=-1.0)
    write_parquet(raw, tiny.paths.raw)
    allow_all = tiny.model_copy(
        update={"validate_": tiny.validate_.model_copy(update={"max_quarantine_share": 1.0})}
    )
    with pytest.raises(QuarantineLimitError, match="30 of 30 rows quarantined, no clean row"):
        stages.validate(allow_all)
    assert not tiny.paths.clean.exists()
    assert len(read_table(tiny.paths.quarantine)) == 30


def test_declared_columns_are_typed_checked_and_kept(tiny: PipelineConfig) -> None:
    """`features.columns`: a declared column is kept after the contract's, typed; a value
    outside its categories, a missing, non-finite or out-of-bounds number is quarantined
    with its reason."""
    declared = Features.model_validate(
        {
            **tiny.features.model_dump(),
            "columns": [
                {"name": "kind", "kind": "categorical", "categories": ["card", "wire"]},
                {"name": "balance", "kind": "numeric", "min": 0, "max": 1e6},
            ],
        }
    ).columns
    df = simulate_history(tiny.generate).head(50).astype(object)
    df["kind"], df["balance"] = "card", "12.5"
    bad = {
        0: ("kind", "cash", "isin"),
        1: ("kind", None, "not_nullable"),
        2: ("balance", "n/a", "not a valid float64"),
        3: ("balance", np.inf, "finite"),
        4: ("balance", -1.0, "greater_than_or_equal_to(0"),
        5: ("balance", 2e6, "less_than_or_equal_to(1000000"),
    }
    for row, (column, value, _) in bad.items():
        df.loc[row, column] = value
    result = validate_transactions(df, tiny.validate_, declared)
    assert list(result.clean.columns) == [*schema.RAW_COLUMNS, "kind", "balance"]
    assert result.clean["balance"].dtype == np.float64
    assert (result.clean["balance"] == 12.5).all()
    assert result.clean["kind"].dtype == "string"
    assert len(result.clean) == 50 - len(bad)
    reasons = dict(zip(result.quarantine[SOURCE_ROW], result.quarantine[REASON], strict=True))
    for row, (column, _, reason) in bad.items():
        assert reasons[row].startswith(f"{column}: {reason}"), (row, reasons[row])
