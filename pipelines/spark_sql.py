"""The `features` statement for Spark SQL: the DuckDB statement of pipelines/features.py,
translated by SQLGlot, plus the rewrites where the two engines read the same text differently.

One source of truth: `features_sql` (DuckDB) is the definition; this module derives the Spark
statement from its syntax tree and never states a feature itself. Each rewrite below keeps
DuckDB's meaning; the parity tests (tests/unit/pipelines/test_features_spark.py) check the
result against DuckDB to 1e-9, ties included.

- `epoch_us(t)` has no Spark spelling: `unix_micros(CAST(t AS TIMESTAMP))`; Spark reads the
  naive timestamps as TIMESTAMP_NTZ and the session runs in UTC (pipelines/spark.py).
- `isodow(t)`: SQLGlot 30 writes `(dayofweek(t) % 7) + 1`, which is not ISO (Sunday is 2);
  `weekday(t) + 1` is (Monday 1 ... Sunday 7).
- `avg` of a DECIMAL: DuckDB returns the DOUBLE of the exact sum over the count; Spark a
  DECIMAL rounded to 4 more places (5e-11 off, which the amount ratios divide by a small mean):
  `CAST(sum(x) AS DOUBLE) / count(x)` over the same window.
- A decimal literal (`1.0`): DuckDB computes with it as a DOUBLE, Spark as a DECIMAL.
- `OVER (c RANGE ...)` refining `WINDOW c AS (...)`: Spark takes a named window only whole:
  each OVER gets the partition and order written out (Spark still shares one sort per window).
- `SELECT * EXCLUDE (...)`: Spark SQL has no star exclusion: the named columns instead.
- Output types: every column of the result is cast to the type DuckDB's statement has (a
  HUGEINT sum as the DOUBLE DuckDB writes to parquet), so both engines write the same schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from pipelines import schema
from pipelines.features import features_sql

if TYPE_CHECKING:
    from pipelines.config import Features

SOURCE = "clean"  # the view the Spark engine registers over the clean parquet
# DuckDB types -> the Spark type that writes the same parquet column (DuckDB writes a HUGEINT
# as a DOUBLE; its TIMESTAMP is naive); any other type keeps SQLGlot's spelling.
PARQUET_TYPES = {"HUGEINT": "DOUBLE", "TIMESTAMP": "TIMESTAMP_NTZ"}


def spark_features_sql(cfg: Features) -> str:
    """The feature query in Spark SQL over the view `SOURCE`."""
    tree = sqlglot.parse_one(features_sql(cfg, SOURCE), read="duckdb")
    _inline_named_windows(tree)
    tree = tree.transform(_rewrite)
    _expand_star(tree)
    _cast_outputs(tree, duckdb_types(cfg))
    return tree.sql(dialect="spark", pretty=True)


def _rewrite(node: exp.Expr) -> exp.Expr:
    """One node of the DuckDB tree as Spark must read it (see the module docstring)."""
    if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us":
        ts = exp.cast(node.expressions[0], exp.DataType.build("TIMESTAMP"))
        return exp.func("unix_micros", ts)
    if isinstance(node, exp.DayOfWeekIso):
        return exp.Add(this=exp.func("weekday", node.this), expression=exp.Literal.number(1))
    if isinstance(node, exp.Literal) and node.is_number and not node.is_int:
        return exp.cast(node, exp.DataType.build("DOUBLE"))
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Avg):
        value = node.this.this
        total, count = node.copy(), node.copy()
        total.set("this", exp.Sum(this=value.copy()))
        count.set("this", exp.Count(this=value.copy()))
        double = exp.cast(total, exp.DataType.build("DOUBLE"))
        return exp.Paren(this=exp.Div(this=double, expression=count))
    return node


def _inline_named_windows(tree: exp.Expr) -> None:
    """`OVER (c RANGE ...)` with `WINDOW c AS (PARTITION BY ... ORDER BY ...)` -> the
    partition and order written into each OVER: Spark refers to a named window only whole."""
    for select in tree.find_all(exp.Select):
        named = {w.name: w for w in select.args.get("windows") or []}
        if not named:
            continue
        for window in select.find_all(exp.Window):
            base = named.get(window.alias)
            if base is None or window.parent_select is not select:
                continue
            window.set("alias", None)
            window.set("partition_by", [p.copy() for p in base.args.get("partition_by") or []])
            window.set("order", base.args["order"].copy())
        select.set("windows", None)


def _expand_star(tree: exp.Expr) -> None:
    """`SELECT * EXCLUDE (a, b) FROM cte` -> the CTE's other columns, by name."""
    for select in tree.find_all(exp.Select):
        star = next((e for e in select.expressions if isinstance(e, exp.Star)), None)
        if star is None:
            continue
        dropped = {c.name for c in star.args.get("except_") or []}
        source = select.args["from_"].this.name
        cte = next(c for c in tree.find_all(exp.CTE) if c.alias == source)
        names = [e.alias_or_name for e in cte.this.expressions if e.alias_or_name not in dropped]
        columns = [exp.column(n) for n in names]
        select.set("expressions", [*columns, *(e for e in select.expressions if e is not star)])


def _cast_outputs(tree: exp.Expr, types: dict[str, str]) -> None:
    """Each output column of the outermost SELECT as the type DuckDB gives it."""
    assert isinstance(tree, exp.Select)
    cast = []
    for e in tree.expressions:
        name = e.alias_or_name
        duck = types[name]
        to = exp.DataType.build(PARQUET_TYPES.get(duck, duck), dialect="duckdb")
        cast.append(exp.alias_(exp.cast(e.unalias(), to), name))
    tree.set("expressions", cast)


def duckdb_types(cfg: Features) -> dict[str, str]:
    """Column -> DuckDB type of the DuckDB statement's result, from DuckDB itself over an
    empty table of the clean data's dtypes (nothing is read)."""
    import duckdb
    import pandas as pd

    dtypes = schema.raw_dtypes(cfg.columns)
    empty = pd.DataFrame({c: pd.Series(dtype=d) for c, d in dtypes.items()})
    con = duckdb.connect()
    try:
        con.register(SOURCE, empty)
        rows = con.execute(f"DESCRIBE {features_sql(cfg, SOURCE)}").fetchall()
    finally:
        con.close()
    return {str(r[0]): str(r[1]) for r in rows}
