"""Bring your own data: a configured file with a column map replaces the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import schema, stages
from pipelines.errors import DataContractError
from pipelines.generate import simulate_history
from pipelines.io import read_table
from tests.conftest import tiny_config

THEIR_NAMES = {
    "TRANSACTION_ID": schema.TRANSACTION_ID,
    "TX_DATETIME": schema.TX_DATETIME,
    "CUSTOMER_ID": schema.CUSTOMER_ID,
    "TERMINAL_ID": schema.TERMINAL_ID,
    "TX_AMOUNT": schema.TX_AMOUNT,
    "TX_FRAUD": schema.TX_FRAUD,
}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_own_file_with_column_map_goes_through_validation(tmp_path: Path, suffix: str) -> None:
    theirs = simulate_history(tiny_config(tmp_path).generate)
    theirs = theirs.drop(columns=[schema.TX_FRAUD_SCENARIO]).rename(
        columns={v: k for k, v in THEIR_NAMES.items()}
    )
    path = tmp_path / f"theirs{suffix}"
    theirs.to_csv(path, index=False) if suffix == ".csv" else theirs.to_parquet(path)
    cfg = tiny_config(
        tmp_path,
        **{"source.kind": "file", "source.path": str(path), "source.column_map": THEIR_NAMES},
    )
    stages.generate(cfg)
    stages.validate(cfg)
    clean = read_table(cfg.paths.clean)
    assert len(clean) == len(theirs)
    assert (clean[schema.TX_FRAUD_SCENARIO] == 0).all()


def test_missing_column_is_named(tmp_path: Path) -> None:
    df = simulate_history(tiny_config(tmp_path).generate).drop(columns=[schema.TERMINAL_ID])
    path = tmp_path / "theirs.parquet"
    df.to_parquet(path)
    cfg = tiny_config(tmp_path, **{"source.kind": "file", "source.path": str(path)})
    with pytest.raises(DataContractError, match=r"missing required column.*terminal_id"):
        stages.generate(cfg)
    assert not cfg.paths.raw.exists()
