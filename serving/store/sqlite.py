"""SQLite online store: one WAL-mode file shared by the service's worker processes.

The events table is the truth (idempotence, labels); per-entity timelines
(serving/store/timelines.py) are what windows are read from.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray

from pipelines.schema import EVENTS
from serving.store import (
    NO_PREVIOUS,
    Aggregates,
    Answers,
    ConflictError,
    Events,
    Fresh,
    Outcome,
    StoreUnavailableError,
    TooFarAheadError,
    Windows,
    now_us,
)
from serving.store import timelines as tl
from serving.store.windows import Timelines, aggregate, latest

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    transaction_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    terminal_id INTEGER NOT NULL,
    ts_us INTEGER NOT NULL,
    amount REAL NOT NULL,
    fraud INTEGER NOT NULL DEFAULT 0
);
DROP INDEX IF EXISTS events_customer;
DROP INDEX IF EXISTS events_terminal;
CREATE TABLE IF NOT EXISTS unknown_labels (transaction_id INTEGER PRIMARY KEY, fraud INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS answers (
    transaction_id INTEGER PRIMARY KEY,
    probability REAL NOT NULL,
    is_fraud INTEGER NOT NULL,
    version INTEGER NOT NULL
);
"""
# Covering indexes: a window aggregate of a few events reads the index alone.
INDEXES = {
    "events_customer_window": "events (customer_id, ts_us, amount)",
    "events_terminal_window": "events (terminal_id, ts_us, fraud)",
}
INSERT = "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)"
KNOWN = "SELECT transaction_id FROM events WHERE transaction_id IN (SELECT value FROM json_each(?))"
KNOWN_FEW = "SELECT transaction_id FROM events WHERE transaction_id IN ({})"  # one ? per id
RANGE = (
    "SELECT {key}, ts_us, {value} FROM events WHERE {key} IN (SELECT value FROM json_each(?)) "
    "AND ts_us > ? AND ts_us <= ? ORDER BY {key}, ts_us"
)
UNKNOWN = "INSERT OR REPLACE INTO unknown_labels VALUES (?, ?)"
# Known transactions of a request: their payload (to tell a retry from a conflict) and the
# answer they got, if any.
KNOWN_ANSWERS = (
    "SELECT e.transaction_id, e.customer_id, e.terminal_id, e.ts_us, e.amount, "
    "a.probability, a.is_fraud, a.version FROM events e LEFT JOIN answers a "
    "USING (transaction_id) WHERE e.transaction_id IN ({})"
)
IDS_JSON = "SELECT value FROM json_each(?)"
ANSWER = "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?)"
NEWEST = "newest_us"  # meta key: the time of the newest event held
# The newest time is written when it moves by more than this (not on every request: a page
# less per commit); the skew limit is then stricter by this much at most.
NEWEST_STEP_US = 3_600 * 1_000_000
TIMELINES_VERSION = "2"
# Timelines keep twice the windows' reach: transactions up to one reach older than the
# newest event seen are read from timelines (as Redis keeps them); older ones from the
# events table, in one query per batch.
KEEP = 2

CHECKPOINT_EVERY_S = 1.0
BUSY_TIMEOUT_S = 30.0
# A request waits at most this long for another process's write (it waits on the event
# loop: a seed or an operator's shell holding the lock must not stall the worker); then 503.
REQUEST_WAIT_S = 2.0
RED_AFTER_FAILURE_S = 5.0  # /ready stays red this long after a failed call
RETRY_FIRST_S, RETRY_MAX_S = 0.0001, 0.002  # waits between tries for the write lock
FEW = 8  # up to this many events, aggregate queries on the events table beat timelines
COMPACT_MAX = 500  # timelines compacted per kind and round at most (bounded background work)
COMPACT_CHUNK = 25  # rows replaced per write transaction (keeps the write lock short)
MMAP_BYTES = 1 << 30
CACHE_KIB = 32 * 1024  # a batch of new events dirties a page per B-tree and timeline


# One kind's reads for some events: window counts, window sums, previous event times (None:
# not configured).
KindReads = tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64] | None]


class SQLiteStore:
    """Events in one table, plus a timeline row per customer and per terminal.

    Each thread gets its own connection (FastAPI runs handlers in a thread pool); WAL mode
    lets readers and the one writer of the moment proceed together across processes.
    """

    remote = False  # a local file: called on the event loop

    def __init__(self, path: Path, windows: Windows) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path, self._windows = path, windows
        self._reach = {
            tl.CUSTOMERS: windows.customer_reach_us,
            tl.TERMINALS: windows.terminal_reach_us,
        }
        self._keep = {kind: KEEP * reach for kind, reach in self._reach.items()}
        self._windows_of = {tl.CUSTOMERS: windows.customer, tl.TERMINALS: windows.terminal}
        self._previous = {
            tl.CUSTOMERS: windows.customer_previous,
            tl.TERMINALS: windows.terminal_previous,
        }
        self._few = {
            tl.CUSTOMERS: _aggregate_sql(tl.CUSTOMERS, windows.customer, windows.customer_previous),
            tl.TERMINALS: _aggregate_sql(tl.TERMINALS, windows.terminal, windows.terminal_previous),
        }
        self._local = threading.local()
        self._error: tuple[float, str | None] = (float("-inf"), None)  # (when, why)
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._db.executescript(SCHEMA)
        self._create_indexes()
        tl.create(self._db)
        self._stale: dict[tl.Kind, set[int]] = {tl.CUSTOMERS: set(), tl.TERMINALS: set()}
        self._write(self._upgrade)
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
                self._compact()
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # busy or closing: the next round will do it
                log.debug("checkpoint skipped: %s", exc)

    def _compact(self) -> None:
        """Sort and prune the timelines found stale (a bounded number per round).

        A few rows at a time: each chunk is prepared on a read snapshot, then the write lock
        is taken only to replace the rows nobody changed meanwhile, and the thread yields
        between chunks. Scoring requests never wait long, for the write lock or for the
        interpreter (one long pass here held it for milliseconds: p99 at 8 connections
        doubled).
        """
        with self._guard:
            todo = {kind: sorted(ids)[:COMPACT_MAX] for kind, ids in self._stale.items()}
            for kind, ids in todo.items():
                self._stale[kind].difference_update(ids)
        for kind, ids in todo.items():
            for start in range(0, len(ids), COMPACT_CHUNK):
                rows = tl.compacted(
                    self._db, kind, ids[start : start + COMPACT_CHUNK], self._keep[kind]
                )
                self._write(partial(tl.replace, self._db, kind, rows))
                time.sleep(0)  # let a request thread take the interpreter

    @property
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            _into_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")
            # Reads through a memory map: no read() call per page (timelines are page-sized).
            db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._local.db = db
            with self._guard:
                self._all.append(db)
        return db

    def _begin(self, wait_s: float) -> None:
        """BEGIN IMMEDIATE, retried every ~0.1 ms while another process writes, for at most
        `wait_s`.

        SQLite's own busy handler sleeps 1, 2, 5, ... ms between tries: far longer than a
        write here lasts, so under concurrent writers it would set the tail latency.
        """
        db = self._db
        db.execute("PRAGMA busy_timeout = 0")
        try:
            _while_locked(lambda: db.execute("BEGIN IMMEDIATE"), wait_s)
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")

    def _write(self, work: Callable[[], T], wait_s: float = BUSY_TIMEOUT_S) -> T:
        """Run `work` in one write transaction (other writers wait; readers never do)."""
        self._begin(wait_s)
        db = self._db
        try:
            result = work()
            db.execute("COMMIT")
        except BaseException:
            self._roll_back(db)
            raise
        return result

    def _roll_back(self, db: sqlite3.Connection) -> None:
        """Undo the open transaction, if SQLite has not already (a full disk, an I/O error);
        a connection that cannot roll back is closed, so it holds no write lock."""
        try:
            if db.in_transaction:
                db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("online store %s: rollback failed (%s): connection closed", self._path, exc)
            self._local.db = None
            with self._guard:
                if db in self._all:
                    self._all.remove(db)
            db.close()

    def _create_indexes(self) -> None:
        for name, columns in INDEXES.items():
            self._db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {columns}")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _rebuild(self) -> None:
        for kind, keep in self._keep.items():
            tl.rebuild(self._db, kind, keep)
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('timelines', ?)", (self._stamp,))

    @property
    def _stamp(self) -> str:
        return f"{TIMELINES_VERSION}:{self._keep[tl.CUSTOMERS]}:{self._keep[tl.TERMINALS]}"

    def _upgrade(self) -> None:
        """Build the timelines of a file written before them (or for other windows)."""
        if self._meta("timelines") != self._stamp:
            self._rebuild()

    def seed(self, seed_dir: Path) -> int:
        events = seed_dir / EVENTS
        if not events.exists():
            return 0
        marker = f"{events.stat().st_size}:{events.stat().st_mtime_ns}"

        def load() -> int:  # one worker seeds; the others wait, then skip
            if self._meta("seed") == marker:
                return 0
            table = pq.read_table(events)
            # Indexes built once after the insert, not row by row: 362,206 events took 3.8 s
            # to insert into the indexed table (profiled), 0.3 s into the bare one plus 0.3 s
            # to build both indexes.
            for name in INDEXES:
                self._db.execute(f"DROP INDEX IF EXISTS {name}")
            self._db.executemany(INSERT, zip(*(c.to_pylist() for c in table.columns), strict=True))
            self._create_indexes()
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seed', ?)", (marker,))
            self._db.execute("DELETE FROM meta WHERE key = ?", (NEWEST,))  # found again
            self._rebuild()
            return int(table.num_rows)

        loaded = self._write(load)
        if loaded:  # the seed sits in the WAL: fold it into the file, read through the mmap
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return loaded

    def add_and_read(self, events: Events) -> Aggregates:
        ids = events.transaction_id.tolist()
        found = (
            self._db.execute(KNOWN_FEW.format(", ".join("?" * len(ids))), ids)
            if len(ids) <= FEW
            else self._db.execute(KNOWN, (tl.ids_json(events.transaction_id),))
        )
        known = np.array([r[0] for r in found], dtype=np.int64)
        new = ~np.isin(events.transaction_id, known)
        if new.any():  # the write lock is held for the insert only, not for the reads
            self._write(lambda: self._add(events, new))
        return self._read(events) if len(events) > FEW else self._read_few(events)

    def score(self, events: Events, fresh: Fresh, max_ahead_us: int | None) -> Outcome:
        """One write transaction: check, add, score (`fresh`), keep the answers. When
        anything raises, the transaction is rolled back: nothing of the call is kept."""
        try:
            return self._write(
                lambda: self._score(events, fresh, max_ahead_us), wait_s=REQUEST_WAIT_S
            )
        except sqlite3.Error as exc:  # disk full, I/O error, corrupt file, locked too long
            raise self._failed(exc) from exc

    def _score(self, events: Events, fresh: Fresh, max_ahead_us: int | None) -> Outcome:
        n = len(events)
        index = {tid: i for i, tid in enumerate(events.transaction_id.tolist())}
        known = np.zeros(n, dtype=np.bool_)
        answered = np.zeros(n, dtype=np.bool_)
        probability = np.zeros(n, dtype=np.float64)
        is_fraud = np.zeros(n, dtype=np.bool_)
        version = np.zeros(n, dtype=np.int64)
        conflicts = []
        ids = events.transaction_id.tolist()
        known_rows = (  # a few ids as parameters (json_each costs more than their parse)
            self._db.execute(KNOWN_ANSWERS.format(", ".join("?" * n)), ids)
            if n <= FEW
            else self._db.execute(
                KNOWN_ANSWERS.format(IDS_JSON), (tl.ids_json(events.transaction_id),)
            )
        )
        for tid, customer, terminal, ts, amount, p, flag, v in known_rows:
            i = index[tid]
            known[i] = True
            same = (
                customer == events.customer_id[i]
                and terminal == events.terminal_id[i]
                and ts == events.ts_us[i]
                and amount == events.amount[i]
            )
            if not same:
                conflicts.append(int(tid))
            elif p is not None:
                answered[i], probability[i], is_fraud[i], version[i] = True, p, flag, v
        if conflicts:
            raise ConflictError(sorted(conflicts))
        newest = self._newest()
        if max_ahead_us is not None:
            limit = max(newest or 0, now_us()) + max_ahead_us
            ahead = np.flatnonzero(~known & (events.ts_us > limit))
            if ahead.size:
                raise TooFarAheadError(events.transaction_id[ahead].tolist(), limit)
        new = ~known
        if new.any():
            self._add(events, new)
            latest = int(events.ts_us[new].max())
            if newest is None or latest > newest + NEWEST_STEP_US:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (NEWEST, latest))
        todo = np.flatnonzero(~answered)
        if todo.size:
            now = events.take(todo)
            got = fresh(todo, self._read(now) if len(now) > FEW else self._read_few(now))
            probability[todo], is_fraud[todo], version[todo] = (
                got.probability,
                got.is_fraud,
                got.version,
            )
            rows = zip(
                now.transaction_id.tolist(),
                got.probability.tolist(),
                got.is_fraud.astype(np.int64).tolist(),
                got.version.tolist(),
                strict=True,
            )
            self._db.executemany(ANSWER, rows)
        return Outcome(Answers(probability, is_fraud, version), answered)

    def _newest(self) -> int | None:
        """The time of the newest event held (None: no event yet)."""
        value = self._meta(NEWEST)
        if value is None:  # a file of an earlier version, or just seeded: found once
            found = self._db.execute("SELECT max(ts_us) FROM events").fetchone()[0]
            if found is None:
                return None
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (NEWEST, found))
            return int(found)
        return int(value)

    def check(self) -> str | None:
        """The last failure's reason for `RED_AFTER_FAILURE_S` after it (a local file has no
        outage to probe for: its calls fail, and say why)."""
        at, reason = self._error
        return reason if time.monotonic() - at < RED_AFTER_FAILURE_S else None

    def _add(self, events: Events, new: NDArray[np.bool_]) -> None:
        added = [
            row
            for row in events.rows(new)  # one by one: another worker may have added some
            if self._db.execute(INSERT, row).rowcount
        ]
        if not added:
            return
        _, customer, terminal, ts, amount, fraud = (list(c) for c in zip(*added, strict=True))
        frauds = [float(f) for f in fraud]
        for kind, ids, values in (
            (tl.CUSTOMERS, customer, amount),
            (tl.TERMINALS, terminal, frauds),
        ):
            stale = tl.append(self._db, kind, ids, ts, values, self._keep[kind])
            if stale:
                with self._guard:
                    self._stale[kind].update(stale)

    def _read_few(self, events: Events) -> Aggregates:
        """One aggregate query per event and kind, on the events table: fastest for a few."""
        return self._assemble(events, self._few_of)

    def _read(self, events: Events) -> Aggregates:
        """Every event's windows from the timelines (and the events table for late ones)."""
        return self._assemble(events, self._aggregate)

    def _assemble(self, events: Events, read: Callable[..., KindReads]) -> Aggregates:
        t = events.ts_us
        cn, camount, cprev = read(tl.CUSTOMERS, events.customer_id, t)
        tn, tfraud, tprev = read(tl.TERMINALS, events.terminal_id, t)
        return Aggregates(
            cn,
            camount,
            tn,
            np.rint(tfraud).astype(np.int64),
            customer_previous=cprev,
            terminal_previous=tprev,
        )

    def _few_of(self, kind: tl.Kind, key: NDArray[np.int64], t: NDArray[np.int64]) -> KindReads:
        """Counts, sums (and previous times) of `kind`'s windows, one query per event."""
        sql, previous = self._few[kind], self._previous[kind] is not None
        k = len(self._windows_of[kind])
        rows = [
            self._db.execute(sql, {"id": i, "t": at}).fetchone() if sql else ()
            for i, at in zip(key.tolist(), t.tolist(), strict=True)
        ]
        sums = np.array([row[: 2 * k] for row in rows], dtype=np.float64).reshape(len(t), 2 * k)
        latest = None
        if previous:
            found = [row[2 * k] for row in rows]
            latest = np.array([NO_PREVIOUS if v is None else v for v in found], dtype=np.int64)
        return sums[:, 0::2].astype(np.int64), sums[:, 1::2], latest

    def _aggregate(self, kind: tl.Kind, key: NDArray[np.int64], t: NDArray[np.int64]) -> KindReads:
        """Counts and sums of every window of `kind` (and the previous event's time, when
        configured), from timelines; transactions older than the timelines cover (rare) from
        the events table, all of them in one query."""
        ids, seg = np.unique(key, return_inverse=True)
        seg = seg.astype(np.int64)
        got = tl.read(self._db, kind, ids, self._keep[kind])
        if got.stale:
            with self._guard:
                self._stale[kind].update(got.stale)
        previous, windows = self._previous[kind], self._windows_of[kind]
        counts, sums = aggregate(got.timelines, seg, t, windows)
        prev = None if previous is None else latest(got.timelines, seg, t, previous)
        late = np.flatnonzero(t - self._reach[kind] < got.since[seg])
        if late.size:
            late_ids, late_seg = np.unique(key[late], return_inverse=True)
            reads = windows + ((previous,) if previous else ())
            found = self._from_events(kind, late_ids, t[late], reads)
            seg_late = late_seg.astype(np.int64)
            counts[late], sums[late] = aggregate(found, seg_late, t[late], windows)
            if prev is not None and previous is not None:
                prev[late] = latest(found, seg_late, t[late], previous)
        return counts, sums, prev

    def _from_events(
        self,
        kind: tl.Kind,
        ids: NDArray[np.int64],
        t: NDArray[np.int64],
        windows: tuple[tuple[int, int], ...],
    ) -> Timelines:
        """The events of `ids` (sorted) that the windows of times `t` reach, one segment each."""
        rows = []
        if windows:  # a group without windows reads nothing
            low = int(t.min()) - max(lo for lo, _ in windows)
            high = int(t.max()) - min(hi for _, hi in windows)
            rows = self._db.execute(
                RANGE.format(key=kind.key, value=kind.value), (tl.ids_json(ids), low, high)
            ).fetchall()
        keys = np.array([r[0] for r in rows], dtype=np.int64)
        return Timelines(
            np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=np.float64),
            np.bincount(np.searchsorted(ids, keys), minlength=len(ids)).astype(np.int64),
        )

    def label(self, labels: list[tuple[int, int]]) -> tuple[int, int]:
        try:
            return self._write(lambda: self._label(labels), wait_s=REQUEST_WAIT_S)
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.Error) -> StoreUnavailableError:
        """The error for the client (503), remembered for /ready a while."""
        reason = f"online store {self._path}: {exc}"
        log.error("%s", reason)
        self._error = (time.monotonic(), reason)
        return StoreUnavailableError(reason)

    def _label(self, labels: list[tuple[int, int]]) -> tuple[int, int]:
        matched, terminals = 0, set()
        for tid, fraud in labels:
            rows = self._db.execute(
                "UPDATE events SET fraud = ? WHERE transaction_id = ? RETURNING terminal_id",
                (fraud, tid),
            ).fetchall()
            if rows:
                matched += 1
                terminals.add(int(rows[0][0]))
            else:
                self._db.execute(UNKNOWN, (tid, fraud))
        tl.refresh(self._db, tl.TERMINALS, sorted(terminals))
        return matched, len(labels) - matched

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join(timeout=5)
        with self._guard:
            for db in self._all:
                db.close()
            self._all.clear()


def _while_locked(attempt: Callable[[], object], wait_s: float = BUSY_TIMEOUT_S) -> None:
    """Run `attempt` until it does not fail with "database is locked": tries ~0.1 ms apart,
    doubling to 2 ms, for at most `wait_s`."""
    deadline, pause = time.monotonic() + wait_s, RETRY_FIRST_S
    while True:
        try:
            attempt()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, RETRY_MAX_S)


def _into_wal(db: sqlite3.Connection) -> None:
    """WAL mode (a property of the file: the first connection sets it for all). Switching
    fails at once, busy handler or not, while another process holds a lock on the new file:
    two workers starting together failed one time in three. So it is retried."""
    _while_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))


def _aggregate_sql(
    kind: tl.Kind, windows: tuple[tuple[int, int], ...], previous: tuple[int, int] | None
) -> str:
    """Count and sum of each window (t - lo, t - hi] of entity :id at time :t, then the
    time of its latest event in the `previous` window (NULL: none), when given."""
    if not windows and previous is None:
        return ""  # a group without windows reads nothing
    parts = []

    def inside(lo: int, hi: int) -> str:
        return f"FILTER (WHERE ts_us > :t - {int(lo)} AND ts_us <= :t - {int(hi)})"

    for lo, hi in windows:
        parts += [f"count(*) {inside(lo, hi)}", f"total({kind.value}) {inside(lo, hi)}"]
    if previous is not None:
        parts.append(f"max(ts_us) {inside(*previous)}")
    reads = windows + ((previous,) if previous else ())
    reach, nearest = max(lo for lo, _ in reads), min(hi for _, hi in reads)
    return (
        f"SELECT {', '.join(parts)} FROM events WHERE {kind.key} = :id "
        f"AND ts_us > :t - {int(reach)} AND ts_us <= :t - {int(nearest)}"
    )
