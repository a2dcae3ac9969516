"""SQLite online store: one WAL-mode file shared by the service's worker processes."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray

from pipelines.materialize import EVENTS
from serving.store import Event, History, Spans

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    transaction_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    terminal_id INTEGER NOT NULL,
    ts_us INTEGER NOT NULL,
    amount REAL NOT NULL,
    fraud INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_customer ON events (customer_id, ts_us);
CREATE INDEX IF NOT EXISTS events_terminal ON events (terminal_id, ts_us);
CREATE TABLE IF NOT EXISTS unknown_labels (transaction_id INTEGER PRIMARY KEY, fraud INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
CUSTOMER = "SELECT ts_us, amount FROM events WHERE customer_id = ? AND ts_us > ? AND ts_us <= ?"
TERMINAL = "SELECT ts_us, fraud FROM events WHERE terminal_id = ? AND ts_us > ? AND ts_us <= ?"
INSERT = "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)"


CHECKPOINT_EVERY_S = 1.0
FEW = 8  # up to this many events, per-event queries beat one batched query


def _ints(values: Iterable[int]) -> NDArray[np.int64]:
    return np.fromiter(values, dtype=np.int64)


class _Grouped:
    """Rows (entity, ts_us, value) sorted by entity then time, sliced per entity."""

    def __init__(self, rows: list[tuple[int, int, float]]) -> None:
        keys = _ints(r[0] for r in rows)
        self.ts = _ints(r[1] for r in rows)
        self.values = np.array([r[2] for r in rows], dtype=float)
        unique, starts = np.unique(keys, return_index=True)
        ends = np.append(starts[1:], len(keys))
        self.slices = dict(
            zip(unique.tolist(), zip(starts.tolist(), ends.tolist(), strict=True), strict=True)
        )

    def window(self, entity: int, low: int, high: int) -> tuple[NDArray[np.int64], NDArray[Any]]:
        """Times and values of `entity` with low < ts <= high."""
        start, end = self.slices.get(entity, (0, 0))
        ts = self.ts[start:end]
        a, b = np.searchsorted(ts, [low, high], side="right")
        return ts[a:b], self.values[start:end][a:b]


class SQLiteStore:
    """Events in one table, indexed by customer and by terminal.

    Each thread gets its own connection (FastAPI runs handlers in a thread pool); WAL mode
    lets readers and the one writer of the moment proceed together across processes.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._db.executescript(SCHEMA)
        # Checkpoints (copying the WAL into the database, with an fsync) run in a background
        # thread, not inside whichever request's commit crosses the threshold: no latency spikes.
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint, name="sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint(self) -> None:
        while not self._stop.wait(CHECKPOINT_EVERY_S):
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # busy or closing: the next round will do it
                log.debug("checkpoint skipped: %s", exc)

    @property
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._local.db = db
            with self._guard:
                self._all.append(db)
        return db

    def seed(self, seed_dir: Path) -> int:
        events = seed_dir / EVENTS
        if not events.exists():
            return 0
        marker = f"{events.stat().st_size}:{events.stat().st_mtime_ns}"
        self._db.execute("BEGIN IMMEDIATE")  # one worker seeds; the others wait, then skip
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'seed'").fetchone()
            if row and row[0] == marker:
                self._db.execute("COMMIT")
                return 0
            rows = pq.read_table(events).to_pylist()
            self._db.executemany(INSERT, [tuple(r.values()) for r in rows])
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seed', ?)", (marker,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return len(rows)

    def add_and_read(self, events: list[Event], spans: Spans) -> list[History]:
        rows = [
            (e.transaction_id, e.customer_id, e.terminal_id, e.ts_us, e.amount, e.fraud)
            for e in events
        ]
        # The write lock is held for the insert only: other workers wait microseconds, not the
        # length of the reads (which, in WAL mode, never block and are never blocked).
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(INSERT, rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        read = self._read_each if len(events) <= FEW else self._read_batch
        return read(events, spans)

    def _read_each(self, events: list[Event], spans: Spans) -> list[History]:
        """One indexed range query per event and entity: fastest for a few events."""
        out = []
        for e in events:
            c = self._db.execute(
                CUSTOMER, (e.customer_id, e.ts_us - spans.customer_us, e.ts_us)
            ).fetchall()
            t = self._db.execute(
                TERMINAL,
                (e.terminal_id, e.ts_us - spans.terminal_from_us, e.ts_us - spans.terminal_to_us),
            ).fetchall()
            out.append(
                History(
                    _ints(r[0] for r in c),
                    np.array([r[1] for r in c], dtype=float),
                    _ints(r[0] for r in t),
                    _ints(r[1] for r in t),
                )
            )
        return out

    def _read_batch(self, events: list[Event], spans: Spans) -> list[History]:
        """Two queries for the whole batch, then each event's windows by binary search."""
        first = min(e.ts_us for e in events)
        last = max(e.ts_us for e in events)
        customers = self._grouped(
            "customer_id",
            "amount",
            {e.customer_id for e in events},
            first - spans.customer_us,
            last,
        )
        terminals = self._grouped(
            "terminal_id",
            "fraud",
            {e.terminal_id for e in events},
            first - spans.terminal_from_us,
            last - spans.terminal_to_us,
        )
        out = []
        for e in events:
            c_ts, c_amount = customers.window(e.customer_id, e.ts_us - spans.customer_us, e.ts_us)
            t_ts, t_fraud = terminals.window(
                e.terminal_id, e.ts_us - spans.terminal_from_us, e.ts_us - spans.terminal_to_us
            )
            out.append(History(c_ts, c_amount.astype(float), t_ts, t_fraud.astype(np.int64)))
        return out

    def _grouped(self, key: str, value: str, ids: set[int], low: int, high: int) -> _Grouped:
        sql = (
            f"SELECT {key}, ts_us, {value} FROM events WHERE {key} IN "
            f"(SELECT value FROM json_each(?)) AND ts_us > ? AND ts_us <= ? "
            f"ORDER BY {key}, ts_us"
        )
        rows = self._db.execute(sql, (json.dumps(sorted(ids)), low, high)).fetchall()
        return _Grouped(rows)

    def label(self, labels: list[tuple[int, int]]) -> tuple[int, int]:
        matched = 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for tid, fraud in labels:
                cur = self._db.execute(
                    "UPDATE events SET fraud = ? WHERE transaction_id = ?", (fraud, tid)
                )
                if cur.rowcount:
                    matched += 1
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO unknown_labels VALUES (?, ?)", (tid, fraud)
                    )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return matched, len(labels) - matched

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join(timeout=5)
        with self._guard:
            for db in self._all:
                db.close()
            self._all.clear()
