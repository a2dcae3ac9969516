"""Stage `validate`: enforce the transaction contract with pandera and quarantine bad rows.

Two passes, because a value check is meaningless on a value of the wrong type: first types
and nulls (coercing), then values (ranges, uniqueness, labels). Every row ends up either
clean or quarantined with its reasons: rows in = rows clean + rows quarantined, always.

Timestamps are coerced here, not by pandera: pandera's coercion knows only nanoseconds, whose
range ends in 1677 and 2262, so one far value (year 1500 or 2500, valid in a parquet
timestamp[us] column) failed the whole column. Here they become datetime64[us], the
contract's type, and fail the range check like any other out-of-range value.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pipelines import schema
from pipelines.config import DeclaredColumn, Validate
from pipelines.errors import QuarantineLimitError

log = logging.getLogger(__name__)

SOURCE_ROW = "source_row"
REASON = "reason"
FRAUD_SCENARIOS = [0, 1, 2, 3, 4]  # 4: the injected `new_fraud_pattern` of production data
FINITE = pa.Check(lambda s: np.isfinite(s), error="finite")


@dataclass(frozen=True)
class ValidationResult:
    """Clean rows, quarantined rows (original values as text, with reasons), and counts."""

    clean: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def counts(self) -> dict[str, float]:
        rows_in = len(self.clean) + len(self.quarantine)
        share = len(self.quarantine) / rows_in if rows_in else 0.0
        return {
            "rows_in": rows_in,
            "rows_clean": len(self.clean),
            "rows_quarantined": len(self.quarantine),
            "quarantined_share": share,
        }


def _type_schema(declared: Sequence[DeclaredColumn]) -> pa.DataFrameSchema:
    dtypes = schema.raw_dtypes(declared)
    columns = {name: pa.Column(dtype, nullable=False) for name, dtype in dtypes.items()}
    # Coerced and checked for nulls by `_timestamps` (pandera would coerce to nanoseconds).
    columns[schema.TX_DATETIME] = pa.Column(nullable=True)
    return pa.DataFrameSchema(columns, coerce=True, strict="filter")


def _one_timestamp(value: object) -> pd.Timestamp | None:
    """One value as a naive microsecond timestamp (UTC if it has a zone), else None."""
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
        if pd.isna(stamp):
            return None
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return stamp.as_unit("us")
    except (ValueError, TypeError, OverflowError):
        return None


def _as_microseconds(values: pd.Series) -> pd.Series:
    """`values` as datetime64[us] (zoned ones in UTC); what is no timestamp becomes NaT.

    Vectorised for the common cases; values the vectorised parse misses (far dates beyond
    nanoseconds, mixed formats or zones) are parsed one by one.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        try:
            return values.astype("datetime64[us]")
        except (ValueError, OverflowError):  # beyond microseconds (a timestamp[s] column)
            pass
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format": retried
            vectorised = pd.to_datetime(values, errors="coerce")
        if not isinstance(vectorised.dtype, pd.DatetimeTZDtype):
            parsed = vectorised.astype("datetime64[us]")
    except (ValueError, TypeError, OverflowError):  # mixed zones: one by one
        pass
    retry = parsed.isna() & values.notna()
    if retry.any():
        again = [_one_timestamp(v) for v in values[retry]]
        parsed[retry] = pd.Series(again, index=parsed.index[retry], dtype="datetime64[us]")
    return parsed


def _timestamps(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """`raw` with its timestamps as datetime64[us], and the reasons of those that are not."""
    values = raw[schema.TX_DATETIME]
    parsed = _as_microseconds(values)
    missing = parsed.isna()
    check = values[missing].isna().map({True: "not_nullable", False: "not a valid datetime64[us]"})
    reasons = f"{schema.TX_DATETIME}: " + check + " (" + values[missing].astype(str) + ")"
    return raw.assign(**{schema.TX_DATETIME: parsed}), reasons.astype(object)


def _declared_checks(column: DeclaredColumn) -> list[pa.Check]:
    """A declared column's value rules (the scoring API's request type applies the same)."""
    if column.kind == "categorical":
        return [pa.Check.isin(column.categories)]
    checks = [FINITE]
    if column.min is not None:
        checks.append(pa.Check.ge(column.min))
    if column.max is not None:
        checks.append(pa.Check.le(column.max))
    return checks


def _value_schema(limits: Validate, declared: Sequence[DeclaredColumn]) -> pa.DataFrameSchema:
    """The value rules of pipelines/schema.py (the scoring API applies the same ones)."""
    finite = FINITE
    when = schema.DatetimeRange.of(limits)
    ids = pa.Check.in_range(schema.MIN_ID, schema.MAX_ID)
    return pa.DataFrameSchema(
        {
            schema.TRANSACTION_ID: pa.Column(
                checks=ids, unique=True, report_duplicates="exclude_first"
            ),
            schema.TX_DATETIME: pa.Column(
                checks=pa.Check.in_range(pd.Timestamp(when.low), pd.Timestamp(when.high))
            ),
            schema.CUSTOMER_ID: pa.Column(checks=ids),
            schema.TERMINAL_ID: pa.Column(checks=ids),
            schema.TX_AMOUNT: pa.Column(
                checks=[pa.Check.ge(schema.MIN_AMOUNT), pa.Check.lt(schema.MAX_AMOUNT), finite]
            ),
            schema.TX_FRAUD: pa.Column(checks=pa.Check.isin([0, 1])),
            schema.TX_FRAUD_SCENARIO: pa.Column(checks=pa.Check.isin(FRAUD_SCENARIOS)),
            **{c.name: pa.Column(checks=_declared_checks(c)) for c in declared},
        }
    )


def _reasons(exc: SchemaErrors) -> pd.Series:
    """One reason string per failing row index: `column: check (value)`, joined by '; '."""
    cases = exc.failure_cases
    cases = cases[cases["index"].notna()]
    text = (
        cases["column"].astype(str)
        + ": "
        + cases["check"].astype(str)
        + " ("
        + cases["failure_case"].astype(str)
        + ")"
    )
    # Coercion failures also show up as dtype failures of the same value: keep one.
    text = text.str.replace(r": coerce_dtype\('([^']*)'\)", r": not a valid \1", regex=True)
    keep = ~cases["check"].astype(str).str.startswith("dtype(")
    grouped: pd.Series = (
        text[keep]
        .groupby(cases["index"][keep].astype(np.int64))
        .agg(lambda r: "; ".join(dict.fromkeys(r)))
    )
    return grouped


def _split(df: pd.DataFrame, contract: pa.DataFrameSchema) -> tuple[pd.DataFrame, pd.Series]:
    """Validate `df`; return the valid rows (validated) and the reasons of the others."""
    try:
        return contract.validate(df, lazy=True), pd.Series(dtype=object)
    except SchemaErrors as exc:
        reasons = _reasons(exc)
    return contract.validate(df.drop(index=reasons.index)), reasons


def _joined(*reasons: pd.Series) -> pd.Series:
    """One reason string per row index from several passes, joined by '; '."""
    parts = [r for r in reasons if not r.empty]
    if not parts:
        return pd.Series(dtype=object)
    joined: pd.Series = pd.concat(parts).groupby(level=0).agg("; ".join)
    return joined


def validate_transactions(
    raw: pd.DataFrame, limits: Validate, declared: Sequence[DeclaredColumn] = ()
) -> ValidationResult:
    """Split `raw` into clean rows (contract dtypes) and quarantined rows with reasons;
    `declared`: the columns `features.columns` declares, checked and kept after the
    contract's."""
    raw = raw.reset_index(drop=True)
    stamped, stamp_reasons = _timestamps(raw)
    typed, type_reasons = _split(stamped, _type_schema(declared))
    typed = typed.drop(index=stamp_reasons.index, errors="ignore")
    clean, value_reasons = _split(typed, _value_schema(limits, declared))
    reasons = _joined(stamp_reasons, type_reasons, value_reasons)
    quarantine = raw.loc[reasons.index].astype("string")
    quarantine.insert(0, SOURCE_ROW, reasons.index.to_numpy(dtype=np.int64))
    quarantine[REASON] = reasons.to_numpy()
    dtypes = schema.raw_dtypes(declared)
    clean = clean[list(dtypes)].astype(dtypes).reset_index(drop=True)
    return ValidationResult(clean=clean, quarantine=quarantine.reset_index(drop=True))


def enforce_limit(result: ValidationResult, limits: Validate) -> None:
    """Fail when more rows were quarantined than the configured share allows."""
    counts = result.counts
    log.info(
        "validate: %(rows_in)d rows in, %(rows_clean)d clean, %(rows_quarantined)d "
        "quarantined (%(quarantined_share).4f)",
        counts,
    )
    quarantined = f"{counts['rows_quarantined']} of {counts['rows_in']} rows quarantined"
    if counts["quarantined_share"] > limits.max_quarantine_share:
        raise QuarantineLimitError(
            f"validate: {quarantined} ({counts['quarantined_share']:.2%}), above "
            f"validate.max_quarantine_share={limits.max_quarantine_share:.2%}; most common: "
            + _most_common(result.quarantine)
        )
    if result.clean.empty:  # even when the limit allows it: no later stage has rows to use
        raise QuarantineLimitError(
            f"validate: {quarantined}, no clean row left; most common: "
            + _most_common(result.quarantine)
        )


def _most_common(quarantine: pd.DataFrame) -> str:
    top = quarantine[REASON].str.split("; ").explode().value_counts().head(3)
    return ", ".join(f"{r} x{n}" for r, n in top.items())
