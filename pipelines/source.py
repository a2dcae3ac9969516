"""Bring your own data: read a configured parquet or CSV file and map it onto the contract.

Everything about the shape of the user's file is configuration (`source:` in
`configs/pipeline.yaml`): column names (`column_map`), text or epoch timestamps
(`timestamp_format`), amounts in minor units (`amount_divisor`) and string identifiers
(`hashed_ids`). String ids become `stable_id(text)`: the first 8 bytes of BLAKE2b over the
UTF-8 text, big-endian, shifted right by one bit, so a non-negative int64 that is the same on
every machine and in every language. The scoring API takes the contract's integer ids: a
caller with string ids sends `stable_id` of them (see README, "Start your own project").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipelines import schema
from pipelines.config import EPOCH_UNITS, Source
from pipelines.errors import DataContractError
from pipelines.io import read_table

log = logging.getLogger(__name__)

# Microseconds per epoch unit. Timestamps are parsed to datetime64[us] (the contract's type)
# without passing through nanoseconds, whose range ends in 1677 and 2262: a far date keeps its
# value, so `validate` quarantines it as out of range instead of it turning into a null.
_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}


def stable_id(text: str) -> int:
    """A string identifier as a stable non-negative int64 (BLAKE2b-64, top bit cleared)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def load_source(source: Source, declared: Sequence[str] = ()) -> pd.DataFrame:
    """Read the user's file, rename columns by `column_map`, convert values as configured,
    and keep the contract's columns and the `declared` ones (`features.columns`).

    Types are not coerced beyond the configured conversions: the `validate` stage quarantines
    rows that break them (a value that fails a conversion becomes null, so it is quarantined).
    """
    df = read_table(source.path).rename(columns=source.column_map)
    if df.empty:
        raise DataContractError(f"{source.path}: has no rows")
    missing = [c for c in (*schema.REQUIRED_COLUMNS, *declared) if c not in df.columns]
    if missing:
        mapped = f" after column_map {source.column_map}" if source.column_map else ""
        raise DataContractError(
            f"{source.path}: missing required column(s) {', '.join(missing)}{mapped}"
        )
    if schema.TX_FRAUD_SCENARIO not in df.columns:
        df[schema.TX_FRAUD_SCENARIO] = 0
    df = convert(df[[*schema.RAW_COLUMNS, *declared]], source)
    log.info("read %d rows from %s", len(df), source.path)
    return df


def convert(df: pd.DataFrame, source: Source) -> pd.DataFrame:
    """Apply the configured conversions (timestamps, amount unit, string ids) to `df`."""
    df = df.copy()
    if source.timestamp_format is not None:
        df[schema.TX_DATETIME] = _timestamps(df[schema.TX_DATETIME], source.timestamp_format)
    if source.amount_divisor != 1:
        df[schema.TX_AMOUNT] = _numbers(df[schema.TX_AMOUNT]) / source.amount_divisor
    for column in source.hashed_ids:
        values = df[column]
        df[column] = pd.array(
            [None if pd.isna(v) else stable_id(str(v)) for v in values], dtype="Int64"
        )
    return df


def _numbers(values: pd.Series) -> pd.Series:
    numbers: pd.Series = pd.to_numeric(values, errors="coerce")
    return numbers


def _timestamps(values: pd.Series, fmt: str) -> pd.Series:
    """Parse text (strftime `fmt`) or epoch numbers; what does not parse becomes NaT."""
    if fmt in EPOCH_UNITS:
        parsed = _epochs(values, EPOCH_UNITS[fmt])
    else:
        parsed = _strftime(values.astype("string"), fmt)
    failed = int(parsed.isna().sum() - values.isna().sum())
    if failed:
        log.warning("%d timestamp(s) do not match source.timestamp_format %r", failed, fmt)
    return parsed


def _epochs(values: pd.Series, unit: str) -> pd.Series:
    """Epoch numbers in `unit` as datetime64[us]; non-numbers and overflows become NaT."""
    numbers = _numbers(values)
    scale = _US_PER_UNIT[unit]
    limit = np.iinfo(np.int64).max // scale
    if pd.api.types.is_integer_dtype(numbers.dtype) and not numbers.hasnans:
        ints = numbers.to_numpy(dtype=np.int64)  # exact: large microsecond epochs stay exact
        ok = (ints >= -limit) & (ints <= limit)
        micros = np.where(ok, ints, 0) * scale
    else:
        floats = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(floats) & (np.abs(np.nan_to_num(floats)) <= limit)
        micros = np.round(np.where(ok, floats, 0.0) * scale).astype(np.int64)
    stamps = micros.astype("datetime64[us]")
    stamps[~ok] = np.datetime64("NaT")
    return pd.Series(stamps, index=values.index, name=values.name)


def _strftime(text: pd.Series, fmt: str) -> pd.Series:
    """Text in strftime `fmt` as naive datetime64[us] (zoned values in UTC), else NaT."""
    parsed = (
        pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        .dt.tz_localize(None)
        .astype("datetime64[us]")
    )
    retry = parsed.isna() & text.notna()
    if retry.any():  # beyond pandas' nanosecond range: parse one by one
        again = [_strptime(str(v), fmt) for v in text[retry]]
        parsed[retry] = pd.Series(again, index=parsed.index[retry], dtype="datetime64[us]")
    return parsed


def _strptime(text: str, fmt: str) -> dt.datetime | None:
    try:
        stamp = dt.datetime.strptime(text, fmt)
    except ValueError:
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp
