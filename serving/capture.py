"""Prediction capture (the Model Monitor data-capture counterpart).

Every scored request is queued on the request path (appended to a deque: no lock, no
thread woken) and written by a background thread to an append-only JSON-lines log, one file
per process and day: `<dir>/date=YYYY-MM-DD/part-<pid>.jsonl`. The thread wakes every
`DRAIN_S` and takes whatever is queued: waking it for each request (a `queue.Queue`) cost a
third of the service's requests per second, in thread switches and interpreter hand-overs.
`stop()` drains the queue, so a graceful shutdown loses nothing. When the queue is full the
rows are counted as dropped, never silently.

Predictions are logged one line per scored request, in columns (`encode`): the request's
values once per line, each row's values as arrays, feature names once per line, not once
per row. That is about half the bytes of a line per row and a fifth of the CPU, which
matters because the writer thread shares the interpreter with the requests. `decode` turns
a line back into rows; monitoring reads the log with DuckDB (monitoring/labels.py).
Other logs (the label log) queue plain records, written one JSON object per line.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

log = logging.getLogger(__name__)

DRAIN_S = 0.05  # how often the writer thread takes what is queued
YIELD_EVERY = 16  # lines encoded between two hand-overs of the interpreter to requests
# Columns of a prediction line: one value per line, then one value per row.
PER_LINE = ("captured_at", "model_name", "model_version")
PER_ROW = (
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "features",  # an object of arrays: feature name -> one value per row
    "fraud_probability",
    "is_fraud",
)


class Batch(Protocol):
    """A request's rows, turned into one log line by the writer thread."""

    def __len__(self) -> int: ...

    def line(self) -> bytes:
        """The batch as one JSON line (`encode`), newline included."""
        ...


def encode(columns: Mapping[str, Any]) -> bytes:
    """One JSON line of `PER_LINE` values and `PER_ROW` arrays (NumPy arrays welcome:
    datetime64 values are written as ISO 8601)."""
    return orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes | str) -> list[dict[str, Any]]:
    """The rows of one prediction line, each a flat record with `features` as a dict."""
    data = orjson.loads(line)
    features: dict[str, list[Any]] = data["features"]
    n = len(data["transaction_id"])
    rows = []
    for i in range(n):
        row = {key: data[key] for key in PER_LINE}
        row.update({key: data[key][i] for key in PER_ROW if key != "features"})
        row["features"] = {name: values[i] for name, values in features.items()}
        rows.append(row)
    return rows


def columns_of(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The inverse of `decode` for rows sharing the `PER_LINE` values (tests, tools)."""
    first = rows[0]
    out: dict[str, Any] = {key: first[key] for key in PER_LINE}
    for key in PER_ROW:
        if key != "features":
            out[key] = [r[key] for r in rows]
    names = list(first["features"])
    out["features"] = {name: [r["features"][name] for r in rows] for name in names}
    return out


class CaptureWriter:
    """A bounded queue drained by one writer thread."""

    def __init__(self, directory: Path, queue_rows: int, flush_rows: int, flush_interval_s: float):
        self._dir = directory
        self._queue: deque[Any] = deque()  # append and popleft are atomic: no lock needed
        self._stopping = threading.Event()
        self._capacity, self._queued = queue_rows, 0  # rows waiting (a batch: its rows)
        self._count = threading.Lock()
        self._flush_rows, self._interval = flush_rows, flush_interval_s
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._file: tuple[Path, BinaryIO] | None = None  # the file being appended to
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def submit(self, records: list[dict[str, Any]]) -> None:
        """Queue records (one line each); count (and log) what does not fit."""
        with self._count:
            room = max(0, min(len(records), self._capacity - self._queued))
            self._queued += room
        self._queue.extend(records[:room])
        self._lost(len(records) - room)

    def submit_batch(self, batch: Batch) -> int:
        """Queue a batch whole, or drop it whole if it does not fit; return rows dropped."""
        rows = len(batch)
        with self._count:
            fits = self._queued + rows <= self._capacity
            self._queued += rows if fits else 0
        if fits:
            self._queue.append(batch)
            return 0
        self._lost(rows)
        return rows

    def _lost(self, rows: int) -> None:
        if rows:
            self.dropped += rows
            log.warning("capture: queue full, %d record(s) not captured", rows)

    def stop(self, timeout: float = 30) -> None:
        """Write everything queued, then stop the thread."""
        if self._thread.is_alive():
            self._stopping.set()
            self._thread.join(timeout)

    @property
    def pending(self) -> int:
        """Rows queued and not yet written."""
        return self._queued

    def _run(self) -> None:
        """Every `DRAIN_S`, encode what is queued; write every `flush_rows` rows, and at the
        latest `flush_interval_s` after the oldest line not yet written (steady traffic
        included); on `stop()`, everything."""
        lines: list[bytes] = []
        rows = 0
        due: float | None = None  # when the lines held must be written
        while True:
            stopping = self._stopping.wait(DRAIN_S)
            encoded = 0
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, dict):
                    lines.append(orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE))
                    rows += 1
                else:
                    lines.append(item.line())
                    rows += len(item)
                encoded += 1
                if encoded % YIELD_EVERY == 0:
                    time.sleep(0)  # let a request thread take the interpreter
                if rows >= self._flush_rows:
                    self._write(lines, rows)
                    lines, rows, due = [], 0, None
            if lines and due is None:
                due = time.monotonic() + self._interval
            if stopping or (due is not None and time.monotonic() >= due):
                self._write(lines, rows)
                lines, rows, due = [], 0, None
            if stopping:
                self._close()
                return

    def _write(self, lines: list[bytes], rows: int) -> None:
        if not lines:
            return
        with self._count:
            self._queued -= rows
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        path = self._dir / f"date={day}" / f"part-{os.getpid()}.jsonl"
        try:
            handle = self._open(path)
            handle.write(b"".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            self._close()
            self.dropped += rows
            log.error("capture: %d record(s) lost writing %s: %s", rows, path, exc)
            return
        self.written += rows

    def _open(self, path: Path) -> BinaryIO:
        """The file of `path`, kept open between writes (a new day, or the file removed by
        someone else: a new file)."""
        if self._file is not None and os.fstat(self._file[1].fileno()).st_nlink == 0:
            self._close()
        if self._file is None or self._file[0] != path:
            self._close()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = (path, path.open("ab"))
        return self._file[1]

    def _close(self) -> None:
        if self._file is not None:
            try:
                self._file[1].close()
            except OSError as exc:
                log.error("capture: closing %s: %s", self._file[0], exc)
            self._file = None
