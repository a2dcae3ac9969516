"""The data contract: a corrupted batch is split, never lost; rows in = clean + quarantined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import schema, stages
from pipelines.config import PipelineConfig
from pipelines.errors import DataContractError, QuarantineLimitError
from pipelines.generate import simulate_history
from pipelines.io import read_table, write_parquet
from pipelines.validate import REASON, SOURCE_ROW, validate_transactions

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
