"""Prediction capture (the Model Monitor data-capture counterpart).

Every scored transaction is queued on the request path (a non-blocking put) and written by
a background thread to an append-only JSON-lines log, one file per process and day:
`<dir>/date=YYYY-MM-DD/part-<pid>.jsonl`. `stop()` drains the queue, so a graceful shutdown
loses nothing. When the queue is full the record is counted as dropped, never silently.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

_STOP = object()


class CaptureWriter:
    """A bounded queue drained by one writer thread."""

    def __init__(self, directory: Path, queue_rows: int, flush_rows: int, flush_interval_s: float):
        self._dir = directory
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_rows)
        self._flush_rows, self._interval = flush_rows, flush_interval_s
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def submit(self, records: list[dict[str, Any]]) -> None:
        """Queue records for writing; count (and log) what does not fit."""
        for i, record in enumerate(records):
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                lost = len(records) - i
                self.dropped += lost
                log.warning("capture: queue full, %d record(s) not captured", lost)
                return

    def stop(self, timeout: float = 30) -> None:
        """Write everything queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

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
            if item is not None:
                batch.append(item)
            if batch and (item is None or len(batch) >= self._flush_rows):
                self._write(batch)
                batch = []

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
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
