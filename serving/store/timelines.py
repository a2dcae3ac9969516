"""SQLite timelines: per customer and per terminal, its recent events as two packed arrays.

Reading a batch's windows from the events table means moving every event of every window
(~100 per transaction) through the SQLite VM and into Python. A timeline row holds the same
events as two blobs (times, values): one primary-key lookup per entity, decoded by NumPy.

Writes stay short: a new event is appended to its rows by one SQL upsert (`||` joins the
bytes; the cast keeps the result a blob), so the write lock is held for microseconds.
Appends may leave a row out of time order (`sorted` = 0); readers sort such rows themselves.
Compaction (sort, prune events older than `newest - keep`, raise `since`) runs off the
request path, for rows readers found stale.

A row is complete for `ts > since`: it holds every event of its entity after `since` (it may
also hold older ones, which no window it is used for can reach). An entity without a row
has no event after the kind's horizon (meta). Windows reaching before `since` (a very late
transaction) are read from the events table instead, so results are always exact.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from serving.store.windows import Timelines

NEVER = -(2**62)  # `since` of a complete history
SLACK_US = 86_400 * 1_000_000  # compact once a row holds a day more than it must keep
COLUMNS = "id, since, oldest, newest, sorted, ts, value"
# What a reader needs: one row per id asked for, with its place in the list; an entity
# without a row reads as empty and complete after the kind's horizon. The left side of a
# LEFT JOIN is SQLite's outer loop, so rows come in the list's order: with no ORDER BY
# (which copies every blob through a sorter, a fifth of the query's time), the reader only
# checks the places, and sorts in the (never seen) case they are out of order.
READ = """
SELECT j.key, coalesce(t.since, (SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), {never}),
    coalesce(t.sorted, 1), coalesce(t.ts, x''), coalesce(t.value, x'')
FROM json_each(?) j LEFT JOIN {table} t ON t.id = j.value
"""
SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    id INTEGER PRIMARY KEY, since INTEGER NOT NULL, oldest INTEGER NOT NULL,
    newest INTEGER NOT NULL, sorted INTEGER NOT NULL, ts BLOB NOT NULL, value BLOB NOT NULL
);
"""
APPEND = """
INSERT INTO {table} VALUES (?, ?, ?, ?, 1, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    ts = CAST(ts || excluded.ts AS BLOB), value = CAST(value || excluded.value AS BLOB),
    sorted = sorted AND excluded.newest >= newest,
    oldest = min(oldest, excluded.oldest), newest = max(newest, excluded.newest)
"""


RETURNING = " RETURNING id, oldest, newest"
FEW_APPENDS = 8  # up to this many, appends report which rows became worth compacting


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


def create(db: sqlite3.Connection) -> None:
    """Create the timeline tables (a no-op when they exist)."""
    for kind in (CUSTOMERS, TERMINALS):
        db.executescript(SCHEMA.format(table=kind.table))


def horizon(db: sqlite3.Connection, kind: Kind) -> int:
    """`since` of the entities without a row."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (kind.horizon_key,)).fetchone()
    return int(row[0]) if row else NEVER


def _row(entity: int, since: int, ts: NDArray[np.int64], values: NDArray[Any]) -> tuple[Any, ...]:
    """A sorted row; `ts` must be sorted."""
    oldest = int(ts[0]) if ts.size else since
    newest = int(ts[-1]) if ts.size else since
    ts_blob = ts.astype("<i8").tobytes()
    return entity, since, oldest, newest, 1, ts_blob, values.astype("<f8").tobytes()


def _write(db: sqlite3.Connection, kind: Kind, rows: list[tuple[Any, ...]]) -> None:
    db.executemany(f"INSERT OR REPLACE INTO {kind.table} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


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
        _write(
            db,
            kind,
            [
                _row(i, since, ts[a:b], values[a:b])
                for i, a, b in zip(unique.tolist(), starts.tolist(), ends.tolist(), strict=True)
            ],
        )
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (kind.horizon_key, str(since)))


def append(
    db: sqlite3.Connection,
    kind: Kind,
    ids: list[int],
    ts: list[int],
    values: list[float],
    keep_us: int,
) -> list[int]:
    """Append new events to their rows, one upsert each (inside the caller's transaction).

    Returns the ids worth compacting when a few events were appended (one statement each,
    which reports the row's state): rows now holding more than they must keep. Real-time
    traffic appends a few at a time and may never read a timeline whole, so this is how its
    rows stay bounded. Rows merely out of order are left to readers, who sort them as they
    read and report them (sorting each on append would cost more than it saves). Larger
    appends return nothing: their batch reads every row it touched right after.
    """
    since = horizon(db, kind)  # for entities seen for the first time
    rows = [
        (i, since, t, t, struct.pack("<q", t), struct.pack("<d", v))
        for i, t, v in zip(ids, ts, values, strict=True)
    ]
    sql = APPEND.format(table=kind.table)
    if len(rows) > FEW_APPENDS:
        db.executemany(sql, rows)
        return []
    stale = []
    for row in rows:
        i, oldest, newest = db.execute(sql + RETURNING, row).fetchone()
        if oldest < newest - keep_us - SLACK_US:
            stale.append(int(i))
    return stale


def ids_json(ids: Iterable[int] | NDArray[np.int64]) -> str:
    """Ids as a JSON array, for `json_each` (orjson: 20x faster than `json` on 1,000)."""
    array = ids if isinstance(ids, np.ndarray) else np.fromiter(ids, dtype=np.int64)
    return orjson.dumps(array.astype(np.int64), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _fetch(
    db: sqlite3.Connection,
    kind: Kind,
    ids: Iterable[int] | NDArray[np.int64],
) -> dict[int, tuple[Any, ...]]:
    rows = db.execute(
        f"SELECT {COLUMNS} FROM {kind.table} WHERE id IN (SELECT value FROM json_each(?))",
        (ids_json(ids),),
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def compacted(
    db: sqlite3.Connection, kind: Kind, ids: Iterable[int], keep_us: int
) -> list[tuple[Any, ...]]:
    """The rows of `ids` sorted and pruned of events older than `newest - keep_us`, each
    followed by the blobs it was made from (for `replace`). Reads only: no write lock."""
    found = _fetch(db, kind, ids)
    if not found:
        return []
    keys = list(found)
    rows = [found[i] for i in keys]
    tl = Timelines.from_blobs([r[4] for r in rows], [r[5] for r in rows])
    owner = np.repeat(np.arange(len(rows), dtype=np.int64), tl.lengths)
    order = np.lexsort((tl.ts, owner))  # every row sorted by time at once
    ts, values, owner = tl.ts[order], tl.values[order], owner[order]
    since = np.array([max(r[0], r[2] - keep_us) for r in rows], dtype=np.int64)
    kept = ts > since[owner]
    ts, values = ts[kept], values[kept]
    ends = np.cumsum(np.bincount(owner[kept], minlength=len(rows)))
    starts = ends - np.diff(ends, prepend=0)
    return [
        (*_row(i, int(since[k]), ts[a:b], values[a:b]), r[4], r[5])
        for k, (i, r, a, b) in enumerate(
            zip(keys, rows, starts.tolist(), ends.tolist(), strict=True)
        )
    ]


def replace(db: sqlite3.Connection, kind: Kind, rows: list[tuple[Any, ...]]) -> None:
    """Write `compacted` rows whose blobs are still the ones they were made from (a row
    appended to or refreshed since is left for a later round)."""
    db.executemany(
        f"UPDATE {kind.table} SET since = ?2, oldest = ?3, newest = ?4, sorted = ?5, "
        f"ts = ?6, value = ?7 WHERE id = ?1 AND ts = ?8 AND value = ?9",
        rows,
    )


def refresh(db: sqlite3.Connection, kind: Kind, ids: Iterable[int]) -> None:
    """Re-read the rows of `ids` from the events table (after labels changed)."""
    out = []
    for i, (since, *_) in _fetch(db, kind, ids).items():
        events = db.execute(
            f"SELECT ts_us, {kind.value} FROM events WHERE {kind.key} = ? AND ts_us > ? "
            f"ORDER BY ts_us",
            (i, since),
        ).fetchall()
        ts = np.array([e[0] for e in events], dtype=np.int64)
        out.append(_row(i, since, ts, np.array([e[1] for e in events], dtype=np.float64)))
    _write(db, kind, out)


def _in_order(tl: Timelines, in_order: NDArray[np.bool_]) -> Timelines:
    """`tl` with its segments appended out of order sorted by time, all in one sort (after a
    burst of out-of-order traffic most rows may be, until compaction catches up)."""
    if in_order.all():
        return tl
    owner = np.repeat(np.arange(len(tl.lengths), dtype=np.int64), tl.lengths)
    moved = np.flatnonzero(~in_order[owner])  # the events of unsorted segments
    order = moved[np.lexsort((tl.ts[moved], owner[moved]))]  # each stays in its segment
    ts, values = tl.ts.copy(), tl.values.copy()
    ts[moved], values[moved] = tl.ts[order], tl.values[order]
    return Timelines(ts, values, tl.lengths)


@dataclass(frozen=True)
class Read:
    """The timelines of some entities, one segment each, and what the reader noticed."""

    timelines: Timelines
    since: NDArray[np.int64]  # per segment
    stale: list[int]  # ids worth compacting (out of order, or holding too much)


def read(db: sqlite3.Connection, kind: Kind, ids: NDArray[np.int64], keep_us: int) -> Read:
    """The timelines of `ids` (in that order), sorted by time."""
    if not ids.size:
        return Read(Timelines.from_blobs([], []), np.zeros(0, dtype=np.int64), [])
    sql = READ.format(table=kind.table, never=NEVER)
    rows = db.execute(sql, (kind.horizon_key, ids_json(ids))).fetchall()
    place, since_, in_order_, ts_, values_ = zip(*rows, strict=True)
    if place != tuple(range(len(rows))):  # not in the list's order: put them in it
        rows.sort(key=lambda row: int(row[0]))
        place, since_, in_order_, ts_, values_ = zip(*rows, strict=True)
    since, in_order = np.array(since_, dtype=np.int64), np.array(in_order_, dtype=bool)
    timelines = _in_order(Timelines.from_blobs(list(ts_), list(values_)), in_order)
    # Holding more than it must (oldest < newest - keep - slack): worth pruning.
    ends = np.cumsum(timelines.lengths)
    some = timelines.lengths > 0
    span = np.zeros(len(rows), dtype=np.int64)
    span[some] = timelines.ts[ends[some] - 1] - timelines.ts[(ends - timelines.lengths)[some]]
    stale = ids[~in_order | (span > keep_us + SLACK_US)].tolist()
    return Read(timelines, since, stale)
