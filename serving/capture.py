"""Prediction capture (the Model Monitor data-capture counterpart).

Every scored transaction is queued on the request path (a non-blocking put) and written by
a background thread to an append-only JSON-lines log, one file per process and day:
`<dir>/date=YYYY-MM-DD/part-<pid>.jsonl`. `stop()` drains the queue, so a graceful shutdown
loses nothing. When the queue is full the record is counted as dropped, never silently.
A request may queue a `Lazy` batch instead of records: the writer thread builds them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any, Protocol

import orjson

log = logging.getLogger(__name__)

_STOP = object()


class Lazy(Protocol):
    """Records built on demand, by the writer thread."""

    def __len__(self) -> int: ...

    def records(self) -> list[dict[str, Any]]:
        """The records, in order."""
        ...


class CaptureWriter:
    """A bounded queue drained by one writer thread."""

    def __init__(self, directory: Path, queue_rows: int, flush_rows: int, flush_interval_s: float):
        self._dir = directory
        self._queue: queue.Queue[Any] = queue.Queue()
        self._capacity, self._queued = queue_rows, 0  # rows waiting (a lazy batch: its rows)
        self._count = threading.Lock()
        self._flush_rows, self._interval = flush_rows, flush_interval_s
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def submit(self, records: list[dict[str, Any]]) -> None:
        """Queue records for writing; count (and log) what does not fit."""
        with self._count:
            room = max(0, min(len(records), self._capacity - self._queued))
            self._queued += room
        for record in records[:room]:
            self._queue.put_nowait(record)
        self._lost(len(records) - room)

    def submit_lazy(self, batch: Lazy) -> int:
        """Queue a lazy batch whole, or drop it whole if it does not fit; return rows dropped."""
        rows = len(batch)
        with self._count:
            fits = self._queued + rows <= self._capacity
            self._queued += rows if fits else 0
        if fits:
            self._queue.put_nowait(batch)
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
            self._queue.put(_STOP)
            self._thread.join(timeout)

    @property
    def pending(self) -> int:
        """Rows queued and not yet written."""
        return self._queued

    def _run(self) -> None:
        batch: list[dict[str, Any]] = []
        while True:
            try:
                item = self._queue.get(timeout=self._interval)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._write(batch)
                return
            if isinstance(item, dict):
                batch.append(item)
            elif item is not None:
                batch.extend(item.records())
            if batch and (item is None or len(batch) >= self._flush_rows):
                self._write(batch)
                batch = []

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        with self._count:
            self._queued -= len(batch)
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        path = self._dir / f"date={day}" / f"part-{os.getpid()}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = b"".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for r in batch)
        try:
            with path.open("ab") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self.dropped += len(batch)
            log.error("capture: %d record(s) lost writing %s: %s", len(batch), path, exc)
            return
        self.written += len(batch)
