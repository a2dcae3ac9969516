"""Stage `validate`: enforce the transaction contract with pandera and quarantine bad rows.

Two passes, because a value check is meaningless on a value of the wrong type: first types
and nulls (coercing), then values (ranges, uniqueness, labels). Every row ends up either
clean or quarantined with its reasons: rows in = rows clean + rows quarantined, always.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pipelines import schema
from pipelines.config import Validate
from pipelines.errors import QuarantineLimitError

log = logging.getLogger(__name__)

SOURCE_ROW = "source_row"
REASON = "reason"
FRAUD_SCENARIOS = [0, 1, 2, 3, 4]  # 4: the injected `new_fraud_pattern` of production data


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


def _type_schema() -> pa.DataFrameSchema:
    dtypes = {**schema.RAW_DTYPES, schema.TX_DATETIME: "datetime64[ns]"}
    columns = {name: pa.Column(dtype, nullable=False) for name, dtype in dtypes.items()}
    return pa.DataFrameSchema(columns, coerce=True, strict="filter")


def _value_schema(limits: Validate) -> pa.DataFrameSchema:
    finite = pa.Check(lambda s: np.isfinite(s), error="finite")
    return pa.DataFrameSchema(
        {
            schema.TRANSACTION_ID: pa.Column(unique=True, report_duplicates="exclude_first"),
            schema.TX_DATETIME: pa.Column(
                checks=pa.Check.in_range(
                    pd.Timestamp(limits.min_datetime), pd.Timestamp(limits.max_datetime)
                )
            ),
            schema.CUSTOMER_ID: pa.Column(checks=pa.Check.ge(0)),
            schema.TERMINAL_ID: pa.Column(checks=pa.Check.ge(0)),
            schema.TX_AMOUNT: pa.Column(
                checks=[pa.Check.ge(0), pa.Check.lt(schema.MAX_AMOUNT), finite]
            ),
            schema.TX_FRAUD: pa.Column(checks=pa.Check.isin([0, 1])),
            schema.TX_FRAUD_SCENARIO: pa.Column(checks=pa.Check.isin(FRAUD_SCENARIOS)),
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


def validate_transactions(raw: pd.DataFrame, limits: Validate) -> ValidationResult:
    """Split `raw` into clean rows (contract dtypes) and quarantined rows with reasons."""
    raw = raw.reset_index(drop=True)
    typed, type_reasons = _split(raw, _type_schema())
    clean, value_reasons = _split(typed, _value_schema(limits))
    reasons = pd.concat([type_reasons, value_reasons]).sort_index()
    quarantine = raw.loc[reasons.index].astype("string")
    quarantine.insert(0, SOURCE_ROW, reasons.index.to_numpy(dtype=np.int64))
    quarantine[REASON] = reasons.to_numpy()
    clean = clean.astype(schema.RAW_DTYPES).reset_index(drop=True)
    return ValidationResult(clean=clean, quarantine=quarantine.reset_index(drop=True))


def enforce_limit(result: ValidationResult, limits: Validate) -> None:
    """Fail when more rows were quarantined than the configured share allows."""
    counts = result.counts
    log.info(
        "validate: %(rows_in)d rows in, %(rows_clean)d clean, %(rows_quarantined)d "
        "quarantined (%(quarantined_share).4f)",
        counts,
    )
    if counts["quarantined_share"] > limits.max_quarantine_share:
        top = result.quarantine[REASON].str.split("; ").explode().value_counts().head(3)
        raise QuarantineLimitError(
            f"validate: {counts['rows_quarantined']} of {counts['rows_in']} rows quarantined "
            f"({counts['quarantined_share']:.2%}), above validate.max_quarantine_share="
            f"{limits.max_quarantine_share:.2%}; most common: "
            + ", ".join(f"{r} x{n}" for r, n in top.items())
        )
