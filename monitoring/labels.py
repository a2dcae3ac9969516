"""Ground truth for captured predictions (the Ground Truth counterpart).

Labels come from `POST /v1/labels` (the service's label log) and from batch label files
(parquet or CSV with `transaction_id`, `tx_fraud`). They are joined to captured predictions
by transaction id. Duplicates are idempotent (the latest label of a transaction wins; batch
files carry no time, so they count as older than any API label, and a later file in the list
as newer than an earlier one); labels of transactions never scored are kept aside and
counted, never dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.io import sql_path

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import DeclaredColumn


@dataclass(frozen=True)
class LabelCounts:
    """received = unique + duplicates; unique = matched + unknown."""

    received: int
    unique: int
    duplicates: int
    matched: int
    unknown: int


MEMORY_LIMIT = "400MB"


def prediction_source(
    capture_dir: Path, features: list[str] | None, declared: Sequence[DeclaredColumn] = ()
) -> str:
    """A SQL relation of every captured prediction, one row per scored transaction.

    The service logs a line per request with its rows in columns (serving/capture.py);
    this unnests them. The log is read with an explicit schema: no type inference pass over
    it, which is most of the cost on a million rows. Without `features`, the feature names
    are the ones found in the log. `declared`: the request's declared columns
    (`features.columns`), kept as columns after `tx_amount`.
    """
    glob = sql_path(capture_dir / "date=*" / "*.jsonl")
    if not list(capture_dir.glob("date=*/*.jsonl")):
        return "(SELECT NULL::BIGINT AS transaction_id WHERE false)"
    if features is None:
        features = _logged_features(glob)
    struct = ", ".join(f'"{name}" DOUBLE[]' for name in features)
    columns = {
        "captured_at": "VARCHAR",  # ISO 8601 in UTC: sorts as it reads
        "model_version": "BIGINT",
        "transaction_id": "BIGINT[]",
        "tx_datetime": "TIMESTAMP[]",
        "customer_id": "BIGINT[]",
        "terminal_id": "BIGINT[]",
        "tx_amount": "DOUBLE[]",
        **{c.name: "DOUBLE[]" if c.kind == "numeric" else "VARCHAR[]" for c in declared},
        "fraud_probability": "DOUBLE[]",
        "is_fraud": "BOOLEAN[]",
    }
    if features:
        columns["features"] = f"STRUCT({struct})"
    spec = ", ".join(f"'{k}': '{v}'" for k, v in columns.items())
    # UNNESTs in one SELECT walk their lists side by side: row i of every column.
    rows = ", ".join(f"UNNEST({c}) AS {c}" for c, kind in columns.items() if kind.endswith("[]"))
    values = "".join(f', UNNEST(features."{f}") AS "#{i}"' for i, f in enumerate(features))
    packed = ", ".join(f'"{f}" := "#{i}"' for i, f in enumerate(features))
    kept = "".join(f", {c.name}" for c in declared)
    return f"""(SELECT captured_at, transaction_id, tx_datetime, customer_id, terminal_id,
                tx_amount{kept}, {f"struct_pack({packed})" if features else "NULL"} AS features,
                fraud_probability, is_fraud, model_version
                FROM (SELECT captured_at, model_version, {rows}{values}
                      FROM read_json('{glob}', format='newline_delimited',
                                     columns={{{spec}}})))"""


def _logged_features(glob: str) -> list[str]:
    """Every feature name found in the prediction log, in order of first appearance."""
    import duckdb

    with duckdb.connect() as con:
        found = con.execute(
            f"""SELECT name FROM (SELECT unnest(json_keys(json, '$.features')) AS name,
                                         row_number() OVER () AS seen
                                  FROM read_json_objects('{glob}', format='newline_delimited'))
                GROUP BY name ORDER BY min(seen)"""
        ).fetchall()
    return [str(r[0]) for r in found]


def label_sources(capture_dir: Path, files: list[Path]) -> str:
    """A SQL query of every label received: the API's log and the batch files."""
    parts = []
    log_glob = capture_dir / "labels" / "date=*" / "*.jsonl"
    if list(capture_dir.glob("labels/date=*/*.jsonl")):
        parts.append(
            f"SELECT transaction_id, tx_fraud, received_at::TIMESTAMP AS received_at "
            f"FROM read_json_auto('{sql_path(log_glob)}')"
        )
    for i, path in enumerate(files):
        reader = "read_csv_auto" if path.suffix.lower() == ".csv" else "read_parquet"
        parts.append(
            f"SELECT transaction_id, tx_fraud, TIMESTAMP '1970-01-01' + INTERVAL {i} "
            f"MICROSECOND AS received_at FROM {reader}('{sql_path(path)}')"
        )
    if not parts:
        return (
            "SELECT NULL::BIGINT AS transaction_id, NULL::INTEGER AS tx_fraud, "
            "NULL::TIMESTAMP AS received_at WHERE false"
        )
    return " UNION ALL ".join(parts)


def window_sql(start: dt.datetime | None, end: dt.datetime | None, unnest: bool = True) -> str:
    """Captured predictions of [start, end) by transaction time (features as columns with
    `unnest`). A transaction scored more than once (a replay) counts once: its latest
    capture, found by an aggregate over two narrow columns rather than a sort of rows."""
    where = []
    if start is not None:
        where.append(f"tx_datetime::TIMESTAMP >= TIMESTAMP '{start.isoformat(sep=' ')}'")
    if end is not None:
        where.append(f"tx_datetime::TIMESTAMP < TIMESTAMP '{end.isoformat(sep=' ')}'")
    cond = f"WHERE {' AND '.join(where)}" if where else ""
    columns = (
        "* EXCLUDE (features, tx_datetime), tx_datetime::TIMESTAMP AS tx_datetime, UNNEST(features)"
        if unnest
        else "*"
    )
    return f"""SELECT {columns} FROM predictions SEMI JOIN
               (SELECT transaction_id, max(captured_at) AS captured_at FROM predictions
                {cond} GROUP BY transaction_id) USING (transaction_id, captured_at)"""


def open_capture(
    capture_dir: Path,
    label_files: list[Path] | None,
    features: list[str] | None,
    declared: Sequence[DeclaredColumn] = (),
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with tables `predictions` (every capture, read once), `labels`
    (every label received) and `latest` (one label per transaction: the latest)."""
    import duckdb

    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})  # spills beyond it
    con.execute(f"CREATE TEMP TABLE labels AS {label_sources(capture_dir, label_files or [])}")
    con.execute("""CREATE TEMP TABLE latest AS SELECT transaction_id,
                   arg_max(tx_fraud, received_at) AS tx_fraud FROM labels
                   GROUP BY transaction_id""")
    source = prediction_source(capture_dir, features, declared)
    con.execute(f"CREATE TEMP TABLE predictions AS SELECT * FROM {source}")
    return con


def unknown_and_counts(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, LabelCounts]:
    """Labels of transactions never scored, and how all labels add up."""
    unknown = con.execute("""SELECT * FROM latest WHERE transaction_id NOT IN
                             (SELECT transaction_id FROM predictions)""").df()
    received = con.execute("SELECT count(*) FROM labels").fetchone()
    unique = con.execute("SELECT count(*) FROM latest").fetchone()
    r, u = int(received[0]) if received else 0, int(unique[0]) if unique else 0
    return unknown, LabelCounts(r, u, r - u, u - len(unknown), len(unknown))


def join(
    capture_dir: Path,
    label_files: list[Path] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    features: list[str] | None = None,
    declared: Sequence[DeclaredColumn] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, LabelCounts]:
    """(predictions with `tx_fraud` where known, labels of unknown transactions, counts).

    With `start`/`end`, only predictions of transactions in [start, end) are returned (the
    window), with their features as columns; unknown labels are always judged against
    every captured prediction.
    """
    con = open_capture(capture_dir, label_files, features, declared)
    try:
        windowed = start is not None or end is not None
        windowed = windowed and bool(list(capture_dir.glob("date=*/*.jsonl")))
        window = window_sql(start, end) if windowed else "SELECT * FROM predictions"
        joined = con.execute(f"""SELECT p.*, l.tx_fraud FROM ({window}) p
                                 LEFT JOIN latest l USING (transaction_id)""").df()
        unknown, counts = unknown_and_counts(con)
    finally:
        con.close()
    return joined, unknown, counts
