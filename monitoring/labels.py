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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.io import sql_path


@dataclass(frozen=True)
class LabelCounts:
    """received = unique + duplicates; unique = matched + unknown."""

    received: int
    unique: int
    duplicates: int
    matched: int
    unknown: int


def _label_sources(capture_dir: Path, files: list[Path]) -> str:
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


def _window_sql(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """Captured predictions of [start, end) by transaction time, features as columns.

    A transaction scored more than once (a replay) counts once: its latest capture.
    """
    where = []
    if start is not None:
        where.append(f"tx_datetime::TIMESTAMP >= TIMESTAMP '{start.isoformat(sep=' ')}'")
    if end is not None:
        where.append(f"tx_datetime::TIMESTAMP < TIMESTAMP '{end.isoformat(sep=' ')}'")
    return f"""SELECT * EXCLUDE (features, tx_datetime), tx_datetime::TIMESTAMP AS tx_datetime,
                      UNNEST(features)
               FROM predictions {"WHERE " + " AND ".join(where) if where else ""}
               QUALIFY row_number() OVER (PARTITION BY transaction_id
                                          ORDER BY captured_at DESC) = 1"""


def join(
    capture_dir: Path,
    label_files: list[Path] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, LabelCounts]:
    """(predictions with `tx_fraud` where known, labels of unknown transactions, counts).

    With `start`/`end`, only predictions of transactions in [start, end) are returned (the
    window), with their features as columns; unknown labels are always judged against
    every captured prediction.
    """
    import duckdb

    predictions = capture_dir / "date=*" / "*.jsonl"
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TEMP TABLE labels AS {_label_sources(capture_dir, label_files or [])}")
        con.execute("""CREATE TEMP TABLE latest AS SELECT transaction_id,
                       arg_max(tx_fraud, received_at) AS tx_fraud FROM labels
                       GROUP BY transaction_id""")
        has_predictions = bool(list(capture_dir.glob("date=*/*.jsonl")))
        pred_sql = (
            f"SELECT * FROM read_json_auto('{sql_path(predictions)}')"
            if has_predictions
            else "SELECT NULL::BIGINT AS transaction_id WHERE false"
        )
        con.execute(f"CREATE TEMP TABLE predictions AS {pred_sql}")
        windowed = has_predictions and (start is not None or end is not None)
        window = _window_sql(start, end) if windowed else "SELECT * FROM predictions"
        joined = con.execute(f"""SELECT p.*, l.tx_fraud FROM ({window}) p
                                 LEFT JOIN latest l USING (transaction_id)""").df()
        unknown = con.execute("""SELECT * FROM latest WHERE transaction_id NOT IN
                                 (SELECT transaction_id FROM predictions)""").df()
        received = con.execute("SELECT count(*) FROM labels").fetchone()
        unique = con.execute("SELECT count(*) FROM latest").fetchone()
    finally:
        con.close()
    r, u = int(received[0]) if received else 0, int(unique[0]) if unique else 0
    counts = LabelCounts(r, u, r - u, u - len(unknown), len(unknown))
    return joined, unknown, counts
