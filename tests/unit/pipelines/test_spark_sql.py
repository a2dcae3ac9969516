"""The Spark statement is derived from the DuckDB one (no JVM here: the parity tests that run
it are tests/unit/pipelines/test_spark.py, marked `spark`)."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from pipelines import schema
from pipelines.config import Features, PipelineConfig
from pipelines.spark_sql import duckdb_types, spark_features_sql
from tests.unit.pipelines.test_features import MOBILE_MONEY


@pytest.mark.parametrize("declared", [{}, MOBILE_MONEY], ids=["default", "mobile_money"])
def test_the_spark_statement_has_every_column_and_no_duckdb_spelling(
    tiny: PipelineConfig, declared: dict[str, object]
) -> None:
    f = Features.model_validate({**tiny.features.model_dump(), **declared})
    sql = spark_features_sql(f)
    for duckdb_only in ("EXCLUDE", "EPOCH_US", "ISODOW", "::", "WINDOW c AS", "AVG("):
        assert duckdb_only not in sql.upper(), duckdb_only
    names = list(duckdb_types(f))  # DuckDB's result, in its order
    raw = schema.raw_columns(f.columns)
    assert names[: len(raw)] == list(raw)
    assert set(schema.feature_columns(f)) <= set(names)
    spark = sqlglot.parse_one(sql, read="spark")
    assert isinstance(spark, exp.Select)
    assert [e.alias_or_name for e in spark.expressions] == names
