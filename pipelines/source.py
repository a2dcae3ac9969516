"""Bring your own data: read a configured parquet or CSV file and map it onto the contract.

Everything about the shape of the user's file is configuration (`source:` in
`configs/pipeline.yaml`): column names (`column_map`), text or epoch timestamps
(`timestamp_format`) or offsets from an origin (`timestamp_origin`, `timestamp_unit`), amounts
in minor units (`amount_divisor`), string identifiers (`hashed_ids`) and, for a file without
one, a generated transaction id (`transaction_id: row_number`). Columns the contract does not
use are dropped, with one warning naming them.

String ids become `stable_id(text)`: the first 8 bytes of BLAKE2b over the UTF-8 text,
big-endian, shifted right by one bit, so a non-negative int64 that is the same on every
machine and in every language. The scoring API takes the contract's integer ids: a caller with
string ids sends `stable_id` of them (see README, "Start your own project").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Sequence, Set

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipelines import schema
from pipelines.config import EPOCH_UNITS, Source, TimeUnit
from pipelines.errors import DataContractError
from pipelines.io import read_table

log = logging.getLogger(__name__)

# Microseconds per unit of numeric timestamps. They are parsed to datetime64[us] (the
# contract's type) without passing through nanoseconds, whose range ends in 1677 and 2262: a
# far date keeps its value, so `validate` quarantines it as out of range instead of it turning
# into a null. Only what does not fit datetime64[us] at all (+-292,000 years) becomes NaT.
_US_PER_UNIT: dict[TimeUnit, int] = {
    "days": 86_400_000_000,
    "hours": 3_600_000_000,
    "minutes": 60_000_000,
    "seconds": 1_000_000,
    "ms": 1_000,
    "us": 1,
}
_MAX_US = int(np.iinfo(np.int64).max)  # the minimum, -2**63, is NaT itself
_EPOCH = dt.datetime(1970, 1, 1)


def stable_id(text: str) -> int:
    """A string identifier as a stable non-negative int64 (BLAKE2b-64, top bit cleared)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def load_source(source: Source, declared: Sequence[str] = ()) -> pd.DataFrame:
    """Read the user's file, rename columns by `column_map`, convert values as configured,
    and keep the contract's columns and the `declared` ones (`features.columns`), warning
    once with the names of the others.

    Types are not coerced beyond the configured conversions: the `validate` stage quarantines
    rows that break them (a value that fails a conversion becomes null, so it is quarantined).
    """
    df = read_table(source.path).rename(columns=source.column_map)
    if df.empty:
        raise DataContractError(f"{source.path}: has no rows")
    if source.transaction_id == "row_number":
        if schema.TRANSACTION_ID in df.columns:
            raise DataContractError(
                f"{source.path}: has a {schema.TRANSACTION_ID} column; "
                "source.transaction_id row_number is for a file without one"
            )
        df[schema.TRANSACTION_ID] = row_numbers(len(df))
    _require_columns(df, source, declared)
    dropped = dropped_columns(df.columns, {*schema.RAW_COLUMNS, *declared})
    if dropped:
        log.warning(
            "source: dropping %d column(s) neither in the contract nor in features.columns: %s",
            len(dropped),
            ", ".join(dropped),
        )
    if schema.TX_FRAUD_SCENARIO not in df.columns:
        df[schema.TX_FRAUD_SCENARIO] = 0
    df = convert(df[[*schema.RAW_COLUMNS, *declared]], source)
    log.info("read %d rows from %s", len(df), source.path)
    return df


def row_numbers(n_rows: int) -> npt.NDArray[np.int64]:
    """Generated transaction ids: each row's position in the file (0-based, file order).

    The same file gives the same ids on every run and machine, and rows appended at the end
    keep the ids of the rows before them; sorting, filtering or inserting rows renumbers
    what follows. A hash of the row's content was considered and not chosen: two rows with
    equal values (the same customer paying the same terminal the same amount within one
    timestamp step, common with hourly or daily times) would get the same id, and the
    contract needs unique ids; a hash that added the position to break ties would no longer
    survive the reordering it was meant to survive. Keep your own id column if you have one.
    """
    return np.arange(n_rows, dtype=np.int64)


def dropped_columns(columns: Iterable[str], keep: Set[str]) -> list[str]:
    """The columns (after `column_map`) that are not in `keep`, sorted by name."""
    return sorted(str(c) for c in columns if c not in keep)


def _require_columns(df: pd.DataFrame, source: Source, declared: Sequence[str]) -> None:
    missing = [c for c in (*schema.REQUIRED_COLUMNS, *declared) if c not in df.columns]
    if not missing:
        return
    mapped = f" after column_map {source.column_map}" if source.column_map else ""
    hint = (
        " (a file without ids: set source.transaction_id: row_number)"
        if schema.TRANSACTION_ID in missing
        else ""
    )
    raise DataContractError(
        f"{source.path}: missing required column(s) {', '.join(missing)}{mapped}{hint}"
    )


def convert(df: pd.DataFrame, source: Source) -> pd.DataFrame:
    """Apply the configured conversions (timestamps, amount unit, string ids) to `df`."""
    df = df.copy()
    if source.timestamp_format is not None:
        df[schema.TX_DATETIME] = _timestamps(df[schema.TX_DATETIME], source)
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


def _timestamps(values: pd.Series, source: Source) -> pd.Series:
    """Parse text (strftime), epoch numbers or offsets from the origin; what does not parse
    becomes NaT."""
    fmt = source.timestamp_format or ""
    origin, unit = source.timestamp_origin, source.timestamp_unit
    if origin is not None and unit is not None:  # set with `offset` only (Source checks it)
        parsed = offsets(values, origin, unit)
    elif fmt in EPOCH_UNITS:
        parsed = offsets(values, _EPOCH, EPOCH_UNITS[fmt])
    else:
        parsed = _strftime(values.astype("string"), fmt)
    failed = int(parsed.isna().sum() - values.isna().sum())
    if failed:
        log.warning("%d timestamp(s) do not match source.timestamp_format %r", failed, fmt)
    return parsed


def offsets(values: pd.Series, origin: dt.datetime, unit: TimeUnit) -> pd.Series:
    """`origin + value * unit` as naive UTC datetime64[us]: step 1 in hours is one hour after
    the origin. Integers are exact; floats are rounded to the microsecond. Non-numbers and
    values beyond datetime64[us] become NaT."""
    numbers = _numbers(values)
    scale = _US_PER_UNIT[unit]
    start = (schema.naive_utc(origin) - _EPOCH) // dt.timedelta(microseconds=1)
    # The product and the sum each stay within int64: [low, high] bounds value * scale.
    low, high = max(-_MAX_US, -_MAX_US - start), min(_MAX_US, _MAX_US - start)
    if pd.api.types.is_integer_dtype(numbers.dtype) and not numbers.hasnans:
        ints = numbers.to_numpy(dtype=np.int64)  # exact: no pass through float64
        ok = (ints >= -(-low // scale)) & (ints <= high // scale)
        micros = np.where(ok, ints, 0) * scale
    else:
        floats = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(floats) & (np.abs(np.nan_to_num(floats)) < 2.0**63 / scale)
        scaled = np.where(ok, floats, 0.0) * scale
        ok &= np.abs(scaled) < 2.0**63  # the product may round up to 2**63
        micros = np.round(np.where(ok, scaled, 0.0)).astype(np.int64)
        ok &= (micros >= low) & (micros <= high)
    stamps = (np.where(ok, micros, 0) + start).astype("datetime64[us]")
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
