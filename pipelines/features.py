"""Stage `features`: the baseline fraud features, point-in-time correct, in SQL on DuckDB.

Windows are RANGE frames over the transaction time in integer microseconds, so a window of
w days ending at a transaction is exactly (t - w, t]: every transaction at the same instant
counts (ties are counted in full, deterministically), the one at exactly t - w does not.
Terminal windows end `label_delay_days` before the transaction, because fraud labels of
the last days are not known yet at scoring time: (t - d - w, t - d] is computed as the
difference of the frames (t - d - w, t] and (t - d, t], which share one sort.

Engines: this DuckDB statement is the one definition. With `engine.kind: spark` the stage runs
it translated to Spark SQL (pipelines/spark_sql.py, SQLGlot plus the rewrites it lists) and
writes the same table; integer frames and plain window functions make that translation small.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from pipelines import schema
from pipelines.config import Engine, Features
from pipelines.io import sql_path
from pipelines.schema import (
    DAY_US,
    feature_columns,
)

log = logging.getLogger(__name__)

# A terminal window's count and fraud count are summed as one BIGINT (count + frauds * 2^32):
# one aggregate per frame instead of two. Exact while a window holds < 2^32 transactions.
FRAUD_UNIT = 1 << 32


# TEMPLATE: a per-transaction feature of your data is one declaration in `features.columns`
# of configs/pipeline.yaml (nothing here). A new kind of feature goes into `feature_columns`
# (pipelines/schema.py), `features_sql` and serving/features.py's `feature_matrix`; the
# parity test checks that both paths agree.
def _frame(days: int) -> str:
    """(t - days, t]; with 0 days, the transactions at t itself (never known at t: excluded)."""
    return f"RANGE BETWEEN {max(days * DAY_US - 1, 0)} PRECEDING AND CURRENT ROW"


def transaction_sql(cfg: Features) -> list[str]:
    """The per-transaction features beyond the base three (`schema.transaction_columns`): a
    numeric column is its own feature (selected with the raw columns); a categorical one
    gives a 0/1 column per declared category. Names and categories are plain identifiers
    (pipelines/config.py), so they need no quoting."""
    out = [f"hour(tx_datetime) AS {schema.TX_HOUR}"] if cfg.hour_of_day else []
    for column in cfg.columns:
        if column.kind == "categorical":
            out += [
                f"CAST({column.name} = '{category}' AS INTEGER) AS {name}"
                for category, name in zip(column.categories, column.feature_names(), strict=True)
            ]
    return out


def _previous(cfg: Features) -> list[tuple[str, int, str]]:
    """(window, cap in days, column) of each days-since-previous feature: the latest other
    transaction of the entity strictly before t (ties excluded) and at most `cap` days back;
    `cap` when there is none."""
    caps = {"c": cfg.customer_since_previous_days, "t": cfg.terminal_since_previous_days}
    names = iter(schema.previous_columns(cfg))
    return [(w, cap, next(names)) for w, cap in caps.items() if cap]


def features_sql(cfg: Features, source: str) -> str:
    """The feature query over `source` (a table name or a `read_parquet(...)` call)."""
    d = cfg.label_delay_days
    customer = []
    for w in cfg.customer_windows_days:
        customer.append(f"count(*) OVER (c {_frame(w)}) AS customer_id_nb_tx_{w}day_window")
        # Exact decimal sums: the same result whatever order threads add the rows in.
        exact = "tx_amount::DECIMAL(18, 6)"
        customer.append(
            f"avg({exact}) OVER (c {_frame(w)}) AS customer_id_avg_amount_{w}day_window"
        )
    tw = cfg.terminal_windows_days
    spans = sorted({d, *(d + w for w in tw)}) if tw else []
    packed = [
        f"sum(1 + tx_fraud::BIGINT * {FRAUD_UNIT}) OVER (t {_frame(s)}) AS _t{s}" for s in spans
    ]
    ratios = [
        f"CASE WHEN customer_id_avg_amount_{w}day_window > 0 "
        f"THEN tx_amount / customer_id_avg_amount_{w}day_window ELSE 1.0 END "
        f"AS customer_id_amount_ratio_{w}day_window"
        for w in cfg.customer_windows_days
        if cfg.customer_amount_ratio
    ]
    terminal = []
    for w in cfg.terminal_windows_days:
        diff = f"(_t{d + w} - _t{d})"
        n = f"({diff} % {FRAUD_UNIT})"
        terminal.append(f"{n} AS terminal_id_nb_tx_{w}day_window")
        terminal.append(
            f"CASE WHEN {n} = 0 THEN 0.0 ELSE ({diff} // {FRAUD_UNIT}) / {n} END "
            f"AS terminal_id_risk_{w}day_window"
        )
    previous = [
        f"coalesce((ts - max(ts) OVER ({w} RANGE BETWEEN {cap * DAY_US} PRECEDING AND 1 "
        f"PRECEDING)) / {float(DAY_US)}, {float(cap)}) AS {name}"
        for w, cap, name in _previous(cfg)
    ]
    raw = ", ".join(schema.raw_columns(cfg.columns))
    # Either window group may be configured empty (turned off): no dangling commas then.
    windowed = "".join(
        f",\n    {c}" for c in [*transaction_sql(cfg), *customer, *packed, *previous]
    )
    exclude = f" EXCLUDE ({', '.join(f'_t{s}' for s in spans)})" if spans else ""
    derived = "".join(f", {c}" for c in [*ratios, *terminal])
    return f"""
WITH tx AS (SELECT {raw}, epoch_us(tx_datetime) AS ts FROM {source}),
windows AS (
  SELECT {raw},
    CAST(isodow(tx_datetime) >= 6 AS INTEGER) AS tx_during_weekend,
    CAST(hour(tx_datetime) <= {cfg.night_max_hour} AS INTEGER) AS tx_during_night{windowed}
  FROM tx
  WINDOW c AS (PARTITION BY customer_id ORDER BY ts), t AS (PARTITION BY terminal_id ORDER BY ts)
)
SELECT *{exclude}{derived}
FROM windows
ORDER BY transaction_id
"""


def build_features(clean: Path, out: Path, cfg: Features, engine: Engine | None = None) -> int:
    """Compute the features of `clean` (parquet) into `out` (parquet) on `engine.kind`;
    return the row count."""
    engine = engine or Engine()
    if engine.kind == "spark":
        count = _build_on_spark(clean, out, cfg, engine)
    else:
        count = _build_on_duckdb(clean, out, cfg, engine)
    log.info("features: %d rows, %d features -> %s", count, len(feature_columns(cfg)), out)
    return count


def _build_on_spark(clean: Path, out: Path, cfg: Features, engine: Engine) -> int:
    """The same statement in Spark SQL on `engine.spark_master`."""
    import pyarrow.parquet as pq

    from pipelines import spark
    from pipelines.spark_sql import SOURCE, spark_features_sql

    sql = spark_features_sql(cfg)
    with spark.session(engine) as session:
        spark.sql_to_parquet(session, sql, {SOURCE: clean}, out)
    return int(pq.read_metadata(out).num_rows)


def _build_on_duckdb(clean: Path, out: Path, cfg: Features, engine: Engine) -> int:
    """DuckDB keeps to `engine.duckdb_memory_limit` by spilling to a temporary folder, so ten
    times the data needs about the same memory, not ten times as much."""
    import duckdb  # the scoring service imports this module's definitions, not DuckDB

    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="fraudops-duckdb-") as spill:
            con.execute(f"SET memory_limit = '{engine.duckdb_memory_limit}'")
            con.execute(f"SET temp_directory = '{sql_path(Path(spill))}'")
            if engine.duckdb_threads:
                con.execute(f"SET threads = {engine.duckdb_threads}")
            source = f"read_parquet('{sql_path(clean)}')"
            con.execute(f"COPY ({features_sql(cfg, source)}) TO '{sql_path(out)}' (FORMAT parquet)")
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{sql_path(out)}')").fetchone()
    finally:
        con.close()
    return int(rows[0]) if rows else 0
