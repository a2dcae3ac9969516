"""Stage `materialize`: the events the online store starts from, so serving computes features
exactly like the offline path.

The scoring service computes every window feature from an online store of events: customer
events (time, amount) for the customer windows and labelled terminal events (time, fraud)
for the delayed terminal windows. This stage writes the events of the last days of the
clean data, as many days as the longest window reaches back, so a fresh store starts
exactly where the offline features stop.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Features
from pipelines.io import sql_path
from pipelines.schema import EVENTS, reach_days

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Materialized:
    """How many events were written and the instant they end at (exclusive)."""

    rows: int
    days: int
    as_of: dt.datetime


def materialize(
    clean: Path, out: Path, cfg: Features, as_of: dt.datetime | None = None
) -> Materialized:
    """Write the events of the `reach_days` before `as_of` (default: after the last row)."""
    out.mkdir(parents=True, exist_ok=True)
    src = f"read_parquet('{sql_path(clean)}')"
    target = sql_path(out / EVENTS)
    days = reach_days(cfg)
    import duckdb  # the scoring service imports this module's constants, not DuckDB

    con = duckdb.connect()
    try:
        last = con.execute(f"SELECT max(tx_datetime) + INTERVAL 1 SECOND FROM {src}").fetchone()
        end = as_of or (last[0] if last else dt.datetime.now())
        sql = f"""
            SELECT transaction_id, customer_id, terminal_id, epoch_us(tx_datetime) AS ts_us,
                   tx_amount, tx_fraud
            FROM {src}
            WHERE tx_datetime < $end AND tx_datetime >= $end - INTERVAL {days} DAY
            ORDER BY ts_us, transaction_id"""
        con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet)", {"end": end})
        count = con.execute(f"SELECT count(*) FROM '{target}'").fetchone()
    finally:
        con.close()
    rows = int(count[0]) if count else 0
    log.info("materialize: %d events of the %d days before %s -> %s", rows, days, end, out)
    return Materialized(rows, days, end)
