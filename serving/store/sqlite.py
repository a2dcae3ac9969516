"""SQLite online store: one WAL-mode file shared by the service's worker processes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipelines.materialize import EVENTS
from serving.store import Event, History, Spans

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

    @property
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
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
        out = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                INSERT,
                [
                    (e.transaction_id, e.customer_id, e.terminal_id, e.ts_us, e.amount, e.fraud)
                    for e in events
                ],
            )
            for e in events:
                c = self._db.execute(
                    CUSTOMER, (e.customer_id, e.ts_us - spans.customer_us, e.ts_us)
                ).fetchall()
                t = self._db.execute(
                    TERMINAL,
                    (
                        e.terminal_id,
                        e.ts_us - spans.terminal_from_us,
                        e.ts_us - spans.terminal_to_us,
                    ),
                ).fetchall()
                out.append(
                    History(
                        np.array([r[0] for r in c], dtype=np.int64),
                        np.array([r[1] for r in c]),
                        np.array([r[0] for r in t], dtype=np.int64),
                        np.array([r[1] for r in t], dtype=np.int64),
                    )
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return out

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
        with self._guard:
            for db in self._all:
                db.close()
            self._all.clear()
