"""Windows of data to compare: captured predictions by time range, or parquet files,
read as seeded samples.

Only the sampled rows are ever converted to pandas: a 1,000,000-row window costs its
columns in DuckDB or Arrow plus `rows` rows, not a full DataFrame copy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from monitoring.labels import LabelCounts, open_capture, unknown_and_counts, window_sql
from pipelines.reference import SCORE
from pipelines.schema import TX_FRAUD

if TYPE_CHECKING:
    import duckdb


def read_sample(path: Path, columns: list[str], rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` rows of `columns`, drawn without replacement with a seeded generator."""
    table = pq.read_table(path, columns=columns)
    if table.num_rows > rows:
        picks = np.sort(np.random.default_rng(seed).choice(table.num_rows, rows, replace=False))
        table = table.take(picks)
    frame: pd.DataFrame = table.to_pandas()
    return frame


@dataclass(frozen=True)
class CapturedWindow:
    """A window of captured predictions, reduced to what the reports need."""

    rows: int
    sample: pd.DataFrame  # at most `sample_rows` rows: features and score
    labelled: pd.DataFrame  # every labelled row: score and label
    model_version: int | None  # the version that scored most of the window
    unknown: pd.DataFrame  # labels of transactions never scored
    labels: LabelCounts


def read_window(
    capture_dir: Path,
    features: list[str],
    start: dt.datetime,
    end: dt.datetime,
    sample_rows: int,
    seed: int,
    label_files: list[Path] | None = None,
) -> CapturedWindow:
    """Captured predictions of [start, end) with their labels, sampled inside DuckDB.

    The log is read once with an explicit schema; only the sample (for drift) and the
    labelled (score, label) pairs (for quality) ever become pandas frames, so a window of a
    million predictions costs about what one of fifty thousand does in memory.
    """
    con = open_capture(capture_dir, label_files, features)
    try:
        if not list(capture_dir.glob("date=*/*.jsonl")):
            unknown, counts = unknown_and_counts(con)
            empty = pd.DataFrame(columns=[*features, SCORE, TX_FRAUD])
            return CapturedWindow(0, empty, empty, None, unknown, counts)
        con.execute(f"""CREATE TEMP TABLE win AS SELECT p.*, l.tx_fraud
                        FROM ({window_sql(start, end, unnest=False)}) p
                        LEFT JOIN latest l USING (transaction_id)""")
        rows = _scalar(con, "SELECT count(*) FROM win")
        top = con.execute("""SELECT model_version FROM win GROUP BY 1
                             ORDER BY count(*) DESC, 1 DESC LIMIT 1""").fetchone()
        con.execute("SET threads TO 1")  # a repeatable sample needs one thread
        names = ", ".join(f'features."{f}" AS "{f}"' for f in features)
        sample = con.execute(f"""SELECT {names}, fraud_probability AS {SCORE}, tx_fraud FROM win
                                 USING SAMPLE reservoir({sample_rows} ROWS)
                                 REPEATABLE ({seed})""").df()
        labelled = con.execute(f"""SELECT fraud_probability AS {SCORE}, tx_fraud FROM win
                                   WHERE tx_fraud IS NOT NULL""").df()
        unknown, counts = unknown_and_counts(con)
    finally:
        con.close()
    version = int(top[0]) if top and top[0] is not None else None
    return CapturedWindow(rows, sample, labelled, version, unknown, counts)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    found = con.execute(sql).fetchone()
    return int(found[0]) if found else 0
