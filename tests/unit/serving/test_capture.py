"""The prediction log: lines round-trip, every appended line is in the file at once (no
buffering a crash could lose), a removed file is recreated, a failing disk is loud."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from serving.capture import CaptureError, CaptureLog, columns_of, decode, encode
from tests.captures import DEFAULTS, read_predictions


def _line(first: int, n: int) -> bytes:
    ids = np.arange(first, first + n, dtype=np.int64)
    return encode(
        {
            **columns_of([{**DEFAULTS, "transaction_id": 0}] * n),
            "transaction_id": ids,
            "tx_datetime": (ids * 1_000_000).astype("datetime64[us]"),
            "features": {"f1": ids * 0.5},
        }
    )


def test_a_line_decodes_to_its_rows() -> None:
    rows = decode(_line(10, 3))
    assert [r["transaction_id"] for r in rows] == [10, 11, 12]
    assert [r["features"]["f1"] for r in rows] == [5.0, 5.5, 6.0]
    assert rows[1]["tx_datetime"] == "1970-01-01T00:00:11"
    assert rows[2]["model_version"] == DEFAULTS["model_version"]


def test_an_appended_line_is_in_the_file_when_append_returns(tmp_path: Path) -> None:
    log = CaptureLog(tmp_path, fsync_interval_s=60)  # no fsync in between: the kernel has it
    log.start()
    try:
        log.append(_line(0, 2))
        log.append(_line(2, 3))
        ids = [r["transaction_id"] for r in read_predictions(tmp_path)]
        assert sorted(ids) == [0, 1, 2, 3, 4]
    finally:
        log.close()


def test_a_removed_file_is_recreated(tmp_path: Path) -> None:
    log = CaptureLog(tmp_path, fsync_interval_s=60)
    log.start()
    try:
        log.append(_line(0, 2))
        for part in tmp_path.glob("date=*/*.jsonl"):
            part.unlink()
        log.append(_line(2, 2))
        assert sorted(r["transaction_id"] for r in read_predictions(tmp_path)) == [2, 3]
    finally:
        log.close()


def test_a_write_that_fails_raises_and_marks_the_log_unwritable(tmp_path: Path) -> None:
    """A full disk (/dev/full answers every write with ENOSPC): the caller hears of it, the
    log says why, and it is writable again once a write succeeds."""
    log = CaptureLog(tmp_path, fsync_interval_s=60)
    log.start()
    try:
        log.append(_line(0, 1))
        full = os.open("/dev/full", os.O_WRONLY)
        path, fd = log._file or (None, -1)
        os.close(fd)
        log._file = (path, full)  # type: ignore[assignment]
        with pytest.raises(CaptureError, match="No space left"):
            log.append(_line(1, 1))
        assert log.error is not None
        assert "No space left" in log.error
        log.append(_line(2, 1))  # a new descriptor on the real file
        assert log.error is None
        assert sorted(r["transaction_id"] for r in read_predictions(tmp_path)) == [0, 2]
    finally:
        log.close()


def test_a_record_that_cannot_be_written_is_kept_aside_with_its_reason(tmp_path: Path) -> None:
    log = CaptureLog(tmp_path, fsync_interval_s=60)
    log.start()
    try:
        record = {"tx_datetime": np.array(["9999-12-31"], dtype="datetime64[D]"), "x": object()}
        log.keep_aside(record, "not encodable: test")
        [kept] = (tmp_path / "rejected").glob("date=*/*.jsonl")
        text = kept.read_text()
        assert "not encodable: test" in text
        assert "9999-12-31" in text
        assert log.kept_aside == 1
    finally:
        log.close()


def test_after_a_failed_write_the_probe_clears_the_error_only_when_a_write_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import serving.capture

    log = CaptureLog(tmp_path, fsync_interval_s=60)
    log._write_error = (0.0, "capture log: No space left on device")
    monkeypatch.setattr(serving.capture, "PROBE_BYTES", 1)
    real_open = Path.open

    def full(self: Path, *args: object, **kwargs: object) -> object:
        if self.name.startswith(".probe"):
            return real_open(Path("/dev/full"), "wb")
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", full)
    log._probe()  # the disk is still full: still red
    assert log.error is not None
    assert "No space left" in log.error
    monkeypatch.undo()
    log._probe()
    assert log.error is None
    assert not list(tmp_path.glob(".probe*"))


def test_a_failed_fsync_is_red_and_counted_until_an_fsync_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = []
    log = CaptureLog(tmp_path, fsync_interval_s=60, on_failure=lambda: failures.append(1))
    log.append(_line(0, 1))

    def eio(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", eio)
    log._sync()
    assert log.error is not None
    assert "fsync: Input/output error" in log.error
    assert failures == [1]
    monkeypatch.undo()
    log.append(_line(1, 1))
    assert log.error is not None  # a write does not prove the disk flushes
    log._sync()
    assert log.error is None
    log.close()


def test_the_fsync_thread_survives_anything_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in the background thread (out of descriptors) leaves it alive,
    the log red and the failure counted; the next good fsync clears it."""
    import threading

    failures = []
    log = CaptureLog(tmp_path, fsync_interval_s=0.01, on_failure=lambda: failures.append(1))
    log.start()
    try:
        log.append(_line(0, 1))
        seen = threading.Event()

        def no_descriptors(fd: int) -> int:
            seen.set()
            raise OSError(24, "Too many open files")

        monkeypatch.setattr(os, "dup", no_descriptors)
        assert seen.wait(10)
        deadline = time.monotonic() + 10
        while log.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.error is not None
        assert "Too many open files" in log.error
        assert failures
        assert log._thread.is_alive()
        monkeypatch.undo()
        log.append(_line(1, 1))
        while log.error is not None and time.monotonic() < deadline + 10:
            time.sleep(0.01)
        assert log.error is None
    finally:
        log.close()
