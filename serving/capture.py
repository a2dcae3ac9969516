"""Prediction capture (the Model Monitor data-capture counterpart).

Every answered request is captured before its answer is sent: the scorer encodes the
request's line and appends it to an append-only JSON-lines log, one file per process and
day, `<dir>/date=YYYY-MM-DD/part-<host>-<pid>.jsonl` (`CaptureLog`; the host name too: replicas
in containers sharing one capture volume are each pid 1). The write goes to the kernel
before the answer does, so a crashed process (kill -9) loses no answered record; it costs
one `write` call per request (docs/adr/0005-capture-writer.md has the figures). When the
log cannot be written, the request is refused with 503 and /ready turns red: an answer is
never sent uncaptured.

Predictions are logged one line per scored request, in columns (`encode`): the request's
values once per line, each row's values as arrays, feature names once per line, not once
per row: about half the bytes of a line per row and a fifth of the CPU of one object per
row. `decode` turns a line back into rows; monitoring reads the log with DuckDB
(monitoring/labels.py). The label log holds plain records, one JSON object per line.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from pipelines.errors import FraudOpsError

RED_AFTER_FAILURE_S = 5.0  # /ready stays red at least this long after a failed write
PROBE_BYTES = 64 * 1024  # what the probe writes to tell a disk with room from a full one

log = logging.getLogger(__name__)

# Columns of a prediction line: one value per line, then one value per row. The declared
# columns of the request (`features.columns`) follow `tx_amount`, one value per row too.
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


def encode(columns: Mapping[str, Any]) -> bytes:
    """One JSON line of `PER_LINE` values and `PER_ROW` arrays (NumPy arrays welcome:
    datetime64 values are written as ISO 8601)."""
    return orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes | str) -> list[dict[str, Any]]:
    """The rows of one prediction line, each a flat record with `features` as a dict."""
    data = orjson.loads(line)
    features: dict[str, list[Any]] = data["features"]
    n = len(data["transaction_id"])
    per_row = [key for key in data if key not in PER_LINE and key != "features"]
    rows = []
    for i in range(n):
        row = {key: data[key] for key in PER_LINE}
        row.update({key: data[key][i] for key in per_row})
        row["features"] = {name: values[i] for name, values in features.items()}
        rows.append(row)
    return rows


def columns_of(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The inverse of `decode` for rows sharing the `PER_LINE` values (tests, tools)."""
    first = rows[0]
    out: dict[str, Any] = {key: first[key] for key in PER_LINE}
    for key in first:
        if key not in PER_LINE and key != "features":
            out[key] = [r[key] for r in rows]
    names = list(first["features"])
    out["features"] = {name: [r["features"][name] for r in rows] for name in names}
    return out


class CaptureError(FraudOpsError):
    """The capture log cannot be written: the request is refused (503), never answered
    uncaptured."""


class CaptureLog:
    """An append-only JSON-lines log, one file per process and day, written before answering.

    `append` hands the line to the kernel (`os.write` on an O_APPEND descriptor) and returns:
    from then on the line survives a crash of this process, kill -9 included. A background
    thread fsyncs every `fsync_interval_s` (power cuts are the disk's business, within that
    interval), outside the lock appends take. A failed write or fsync raises or records the
    failure (`on_failure` counts it) and marks the log unwritable (`error`, shown by
    /ready): after a failed write, until a request's write succeeds or, at least
    `RED_AFTER_FAILURE_S` later, the thread's probe (`PROBE_BYTES` written and flushed next
    to the log); after a failed fsync, until an fsync succeeds. A record that cannot be
    encoded is kept aside in `<dir>/rejected/`, with its reason.
    """

    def __init__(
        self,
        directory: Path,
        fsync_interval_s: float,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._dir = directory
        self._interval = fsync_interval_s
        self._on_failure = on_failure
        self._lock = threading.Lock()  # one writer at a time per process (thread pool)
        self._file: tuple[Path, int] | None = None  # the file being appended to, its fd
        self._dirty = False  # written since the last fsync
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sync_loop, name=f"sync-{directory.name}")
        self._thread.daemon = True
        self._write_error: tuple[float, str] | None = None  # (when, why) the last write failed
        self._sync_error: str | None = None  # why the last fsync failed
        self.written = 0  # lines
        self.kept_aside = 0  # records written to rejected/ instead

    @property
    def error(self) -> str | None:
        """Why the log cannot be trusted now; None when it can."""
        return self._sync_error or (self._write_error[1] if self._write_error else None)

    def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def append(self, line: bytes) -> None:
        """Write `line` (newline included) whole, or raise `CaptureError`."""
        path = _today(self._dir)
        with self._lock:
            try:
                fd = self._fd(path)
                view = memoryview(line)
                while view:  # a short write (rare: signals, a nearly full disk) goes on
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                self._close()
                reason = f"capture log {path}: {exc.strerror or exc}"
                self._write_error = (time.monotonic(), reason)
                log.error("%s", reason)
                self._on_failure()
                raise CaptureError(reason) from exc
            self._dirty = True
            self._write_error = None
            self.written += 1

    def append_records(self, records: list[dict[str, Any]]) -> None:
        """Write plain records, one JSON object per line, in one write."""
        self.append(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records))

    def keep_aside(self, record: Mapping[str, Any], reason: str) -> None:
        """Write a record the log could not take to `<dir>/rejected/`, with the reason
        (values that JSON cannot hold are written as text). Raises `CaptureError` when even
        that fails."""
        entry = {
            "kept_at": dt.datetime.now(dt.UTC).isoformat(),
            "reason": reason,
            "record": _as_text(record),
        }
        line = orjson.dumps(entry, default=repr, option=orjson.OPT_APPEND_NEWLINE)
        path = _today(self._dir / "rejected")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as handle:
                handle.write(line)
        except OSError as exc:
            self._on_failure()
            raise CaptureError(f"capture log {path}: {exc.strerror or exc}") from exc
        with self._lock:
            self.kept_aside += 1
        log.error("capture: a record was kept aside in %s: %s", path, reason)

    def close(self) -> None:
        """Fsync and close the file; stop the background thread."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sync()
        with self._lock:
            self._close()

    def _fd(self, path: Path) -> int:
        """The descriptor of `path`, kept open between writes (a new day, or the file
        removed by someone else: a new file). Called with the lock held."""
        if self._file is not None and (
            self._file[0] != path or os.fstat(self._file[1]).st_nlink == 0
        ):
            old = self._file[1]
            self._file = None
            _fsync_and_close(old)
        if self._file is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._file = (path, fd)
        return self._file[1]

    def _sync_loop(self) -> None:
        """Fsync every interval; this thread never dies: anything unexpected is logged and
        makes the log red (an fsync that did not happen) until an fsync succeeds."""
        while not self._stopping.wait(self._interval):
            try:
                self._sync()
                failed = self._write_error
                if failed is not None and time.monotonic() - failed[0] >= RED_AFTER_FAILURE_S:
                    self._probe()
            except Exception as exc:  # e.g. os.dup out of descriptors
                self._on_failure()
                log.exception("capture log %s: fsync thread", self._dir)
                self._sync_error = f"capture log {self._dir}: fsync thread: {exc}"

    def _sync(self) -> None:
        """Fsync what was written, on a duplicate of the descriptor and outside the lock:
        an append never waits for the disk to flush."""
        with self._lock:
            if self._file is None or not self._dirty:
                return
            path, fd = self._file[0], os.dup(self._file[1])
            self._dirty = False
        try:
            os.fsync(fd)
            self._sync_error = None
        except OSError as exc:
            self._sync_error = f"capture log {path}: fsync: {exc.strerror or exc}"
            log.error("%s", self._sync_error)
            self._on_failure()
        finally:
            os.close(fd)

    def _probe(self) -> None:
        """After a failed write: writable again when a probe of `PROBE_BYTES` can be written
        and flushed next to the log (a file that merely opens proves nothing on a full
        disk)."""
        probe = self._dir / f".probe-{os.getpid()}"
        try:
            probe.parent.mkdir(parents=True, exist_ok=True)
            with probe.open("wb") as handle:
                handle.write(b"\0" * PROBE_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self._write_error = (time.monotonic(), f"capture log {self._dir}: {exc.strerror}")
            return
        finally:
            probe.unlink(missing_ok=True)
        self._write_error = None

    def _close(self) -> None:
        if self._file is not None:
            try:
                os.close(self._file[1])
            except OSError as exc:
                log.error("capture: closing %s: %s", self._file[0], exc)
            self._file = None


def _fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        log.error("capture: fsync of the previous file failed: %s", exc)
    finally:
        os.close(fd)


def _today(directory: Path) -> Path:
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    return directory / f"date={day}" / f"part-{socket.gethostname()}-{os.getpid()}.jsonl"


def _as_text(value: Any) -> Any:
    """`value` with NumPy arrays as lists and anything JSON cannot hold as its text."""
    if isinstance(value, Mapping):
        return {str(k): _as_text(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return _as_text(value.tolist())
    if isinstance(value, list | tuple):
        return [_as_text(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)
