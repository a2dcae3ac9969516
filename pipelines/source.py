"""Bring your own data: read a configured parquet or CSV file and map it onto the contract."""

from __future__ import annotations

import logging

import pandas as pd

from pipelines import schema
from pipelines.config import Source
from pipelines.errors import DataContractError
from pipelines.io import read_table

log = logging.getLogger(__name__)


def load_source(source: Source) -> pd.DataFrame:
    """Read the user's file, rename columns by `column_map`, and keep the contract's columns.

    Types are not coerced here: the `validate` stage quarantines rows that break them.
    """
    assert source.path is not None  # guaranteed by the config model for kind 'file'
    df = read_table(source.path).rename(columns=source.column_map)
    missing = [c for c in schema.REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        mapped = f" after column_map {source.column_map}" if source.column_map else ""
        raise DataContractError(
            f"{source.path}: missing required column(s) {', '.join(missing)}{mapped}"
        )
    if schema.TX_FRAUD_SCENARIO not in df.columns:
        df[schema.TX_FRAUD_SCENARIO] = 0
    log.info("read %d rows from %s", len(df), source.path)
    return df[list(schema.RAW_COLUMNS)]
