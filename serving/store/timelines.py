"""SQLite timelines: per customer and per terminal, its recent events as two packed arrays.

Reading a batch's windows from the events table means moving every event of every window
(~100 per transaction) through the SQLite VM and into Python. A timeline row holds the same
events as two blobs (times, values): one primary-key lookup per entity, decoded by NumPy.

A timeline row is complete for `ts > since`: it holds every event of its entity after
`since`. Events older than `newest - keep` are pruned (raising `since`); an entity without a
row has no event after the kind's horizon (meta). Windows reaching before `since` (a very
late transaction) are read from the events table instead, so results are always exact.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.store.windows import Timelines

NEVER = -(2**62)  # `since` of a complete history
SCHEMA = """
CREATE TABLE IF NOT EXISTS customer_timeline (
    id INTEGER PRIMARY KEY, since INTEGER NOT NULL, ts BLOB NOT NULL, value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS terminal_timeline (
    id INTEGER PRIMARY KEY, since INTEGER NOT NULL, ts BLOB NOT NULL, value BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Kind:
    """Customers (amounts) or terminals (fraud labels)."""

    table: str
    key: str  # the events column naming the entity
    value: str  # the events column summed in windows

    @property
    def horizon_key(self) -> str:
        return f"horizon:{self.table}"


CUSTOMERS = Kind("customer_timeline", "customer_id", "amount")
TERMINALS = Kind("terminal_timeline", "terminal_id", "fraud")


def _pack(ts: NDArray[np.int64], values: NDArray[np.float64]) -> tuple[bytes, bytes]:
    return ts.astype("<i8").tobytes(), values.astype("<f8").tobytes()


def horizon(db: sqlite3.Connection, kind: Kind) -> int:
    """`since` of the entities without a row."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (kind.horizon_key,)).fetchone()
    return int(row[0]) if row else NEVER


def rebuild(db: sqlite3.Connection, kind: Kind, keep_us: int) -> None:
    """Every timeline of `kind` from the events table (inside the caller's transaction)."""
    newest = db.execute("SELECT max(ts_us) FROM events").fetchone()[0]
    since = NEVER if newest is None else int(newest) - keep_us
    rows = db.execute(
        f"SELECT {kind.key}, ts_us, {kind.value} FROM events WHERE ts_us > ? "
        f"ORDER BY {kind.key}, ts_us",
        (since,),
    ).fetchall()
    db.execute(f"DELETE FROM {kind.table}")
    if rows:
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        ts = np.array([r[1] for r in rows], dtype=np.int64)
        values = np.array([r[2] for r in rows], dtype=np.float64)
        unique, starts = np.unique(ids, return_index=True)
        ends = np.append(starts[1:], len(ids))
        db.executemany(
            f"INSERT INTO {kind.table} VALUES (?, ?, ?, ?)",
            (
                (int(i), since, *_pack(ts[a:b], values[a:b]))
                for i, a, b in zip(unique.tolist(), starts.tolist(), ends.tolist(), strict=True)
            ),
        )
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (kind.horizon_key, str(since)))


def _fetch(db: sqlite3.Connection, kind: Kind, ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    rows = db.execute(
        f"SELECT id, since, ts, value FROM {kind.table} WHERE id IN "
        f"(SELECT value FROM json_each(?))",
        (json.dumps(list(ids)),),
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def merge(
    db: sqlite3.Connection,
    kind: Kind,
    ids: NDArray[np.int64],
    ts: NDArray[np.int64],
    values: NDArray[np.float64],
    keep_us: int,
) -> None:
    """Add new events to their timelines (inside the caller's write transaction)."""
    order = np.lexsort((ts, ids))
    ids, ts, values = ids[order], ts[order], values[order]
    unique, starts = np.unique(ids, return_index=True)
    ends = np.append(starts[1:], len(ids))
    rows = _fetch(db, kind, unique.tolist())
    default = horizon(db, kind)
    out = []
    for i, a, b in zip(unique.tolist(), starts.tolist(), ends.tolist(), strict=True):
        since, old_ts, old_values = rows.get(i, (default, b"", b""))
        fresh = ts[a:b] > since  # older events are in the events table only
        if not fresh.any():
            continue
        all_ts = np.concatenate([np.frombuffer(old_ts, dtype="<i8"), ts[a:b][fresh]])
        all_values = np.concatenate([np.frombuffer(old_values, dtype="<f8"), values[a:b][fresh]])
        by_time = np.argsort(all_ts, kind="stable")
        since = max(since, int(all_ts.max()) - keep_us)
        kept = by_time[all_ts[by_time] > since]
        out.append((i, since, *_pack(all_ts[kept], all_values[kept])))
    db.executemany(f"INSERT OR REPLACE INTO {kind.table} VALUES (?, ?, ?, ?)", out)


def refresh(db: sqlite3.Connection, kind: Kind, ids: Iterable[int]) -> None:
    """Re-read the timelines of `ids` from the events table (after labels changed)."""
    rows = _fetch(db, kind, ids)
    out = []
    for i, (since, _, _) in rows.items():
        events = db.execute(
            f"SELECT ts_us, {kind.value} FROM events WHERE {kind.key} = ? AND ts_us > ? "
            f"ORDER BY ts_us",
            (i, since),
        ).fetchall()
        ts = np.array([e[0] for e in events], dtype=np.int64)
        values = np.array([e[1] for e in events], dtype=np.float64)
        out.append((i, since, *_pack(ts, values)))
    db.executemany(f"INSERT OR REPLACE INTO {kind.table} VALUES (?, ?, ?, ?)", out)


def read(
    db: sqlite3.Connection, kind: Kind, ids: NDArray[np.int64]
) -> tuple[Timelines, NDArray[np.int64]]:
    """The timelines of `ids` (in that order, one segment each) and each one's `since`."""
    rows = _fetch(db, kind, ids.tolist())
    default = horizon(db, kind)
    missing = (default, b"", b"")
    found = [rows.get(i, missing) for i in ids.tolist()]
    since = np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))
    return Timelines.from_blobs([r[1] for r in found], [r[2] for r in found]), since
