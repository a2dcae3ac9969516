"""Stage `materialize`: what the online store needs to compute features like the offline path.

The scoring service computes every window feature from an online store of events:
customer events (time, amount) for the customer windows, and labelled terminal events
(time, fraud) for the delayed terminal windows. This stage writes the events of the last
days of the clean data (as many as the longest window reaches back) so a fresh store starts
exactly where the offline features stop.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.config import Features

log = logging.getLogger(__name__)

CUSTOMER_EVENTS = "customer_events.parquet"
TERMINAL_EVENTS = "terminal_events.parquet"


@dataclass(frozen=True)
class Materialized:
    """Where the events went, how many, and the instant they end at."""

    customer_rows: int
    terminal_rows: int
    as_of: dt.datetime


def _q(path: Path) -> str:
    return str(path).replace("'", "''")


def materialize(
    clean: Path, out: Path, cfg: Features, as_of: dt.datetime | None = None
) -> Materialized:
    """Write the customer and terminal events before `as_of` (default: after the last row)."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        src = f"read_parquet('{_q(clean)}')"
        last = con.execute(f"SELECT max(tx_datetime) + INTERVAL 1 SECOND FROM {src}").fetchone()
        end = as_of or (last[0] if last else dt.datetime.now())
        customer_days = max(cfg.customer_windows_days)
        terminal_days = cfg.label_delay_days + max(cfg.terminal_windows_days)
        customer = f"""
            SELECT transaction_id, customer_id, epoch_us(tx_datetime) AS ts_us, tx_amount
            FROM {src}
            WHERE tx_datetime < $end AND tx_datetime >= $end - INTERVAL {customer_days} DAY
            ORDER BY customer_id, ts_us, transaction_id"""
        terminal = f"""
            SELECT transaction_id, terminal_id, epoch_us(tx_datetime) AS ts_us, tx_fraud
            FROM {src}
            WHERE tx_datetime < $end AND tx_datetime >= $end - INTERVAL {terminal_days} DAY
            ORDER BY terminal_id, ts_us, transaction_id"""
        counts = []
        for sql, name in ((customer, CUSTOMER_EVENTS), (terminal, TERMINAL_EVENTS)):
            con.execute(f"COPY ({sql}) TO '{_q(out / name)}' (FORMAT parquet)", {"end": end})
            counts.append(con.execute(f"SELECT count(*) FROM '{_q(out / name)}'").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()
    log.info(
        "materialize: %d customer and %d terminal events before %s -> %s",
        counts[0],
        counts[1],
        end,
        out,
    )
    return Materialized(int(counts[0]), int(counts[1]), end)
