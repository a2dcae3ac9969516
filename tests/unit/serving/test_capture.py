"""The prediction log: lines round-trip, a removed file is recreated, nothing queued is lost."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from serving.capture import CaptureWriter, columns_of, decode, encode
from tests.captures import DEFAULTS, read_predictions


class _Rows:
    """A request's rows, as the scorer queues them."""

    def __init__(self, first: int, n: int) -> None:
        self.first, self.n = first, n

    def __len__(self) -> int:
        return self.n

    def line(self) -> bytes:
        ids = np.arange(self.first, self.first + self.n, dtype=np.int64)
        return encode(
            {
                **columns_of([{**DEFAULTS, "transaction_id": 0}] * self.n),
                "transaction_id": ids,
                "tx_datetime": (ids * 1_000_000).astype("datetime64[us]"),
                "features": {"f1": ids * 0.5},
            }
        )


def test_a_line_decodes_to_its_rows() -> None:
    rows = decode(_Rows(10, 3).line())
    assert [r["transaction_id"] for r in rows] == [10, 11, 12]
    assert [r["features"]["f1"] for r in rows] == [5.0, 5.5, 6.0]
    assert rows[1]["tx_datetime"] == "1970-01-01T00:00:11"
    assert rows[2]["model_version"] == DEFAULTS["model_version"]


def test_every_row_is_written_even_when_the_file_is_removed_meanwhile(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, queue_rows=10_000, flush_rows=5, flush_interval_s=0.05)
    writer.start()
    writer.submit_batch(_Rows(0, 5))  # a full flush: written now
    deadline = time.monotonic() + 5
    while writer.written < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    for path in tmp_path.glob("date=*/part-*.jsonl"):
        path.unlink()  # e.g. an operator moved the day away: the next write makes a new file
    writer.submit_batch(_Rows(5, 3))
    writer.submit_batch(_Rows(8, 4))
    writer.stop()
    assert writer.dropped == 0
    assert writer.written == 12
    assert [r["transaction_id"] for r in read_predictions(tmp_path)] == list(range(5, 12))


def test_a_full_queue_counts_what_it_drops(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, queue_rows=4, flush_rows=100, flush_interval_s=60)
    assert writer.submit_batch(_Rows(0, 3)) == 0
    assert writer.submit_batch(_Rows(3, 3)) == 3  # does not fit: dropped whole, counted
    writer.start()
    writer.stop()
    assert (writer.written, writer.dropped) == (3, 3)


def test_steady_traffic_is_written_within_the_flush_interval(tmp_path: Path) -> None:
    """A request every 50 ms never leaves the writer idle for the 200 ms interval: lines are
    still written 200 ms after the oldest one, not held until `flush_rows`."""
    writer = CaptureWriter(tmp_path, queue_rows=10_000, flush_rows=10_000, flush_interval_s=0.2)
    writer.start()
    try:
        for i in range(20):  # one second of traffic
            writer.submit_batch(_Rows(i, 1))
            time.sleep(0.05)
        assert writer.written >= 10  # without a deadline: 0 until stop
    finally:
        writer.stop()
    assert writer.written == 20
