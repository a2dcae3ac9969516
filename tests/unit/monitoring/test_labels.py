"""Labels joined to captured predictions: late, duplicate and unknown cases add up."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from monitoring.labels import join
from tests.captures import write_predictions


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _predictions(path: Path, rows: list[dict[str, object]]) -> None:
    write_predictions(path, rows)


def test_late_duplicate_and_unknown_labels(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    _predictions(
        capture / "date=2026-11-01/part-1.jsonl",
        [
            {"transaction_id": i, "fraud_probability": i / 10, "model_version": 1}
            for i in range(1, 6)
        ],
    )
    _jsonl(
        capture / "labels/date=2026-11-08/part-1.jsonl",
        [
            {"received_at": "2026-11-08T10:00:00", "transaction_id": 1, "tx_fraud": 0},
            {
                "received_at": "2026-11-09T10:00:00",
                "transaction_id": 1,
                "tx_fraud": 1,
            },  # correction
            {"received_at": "2026-11-08T10:00:00", "transaction_id": 2, "tx_fraud": 0},
            {"received_at": "2026-11-08T10:00:00", "transaction_id": 99, "tx_fraud": 1},  # unknown
        ],
    )
    batch = tmp_path / "chargebacks.csv"  # late labels from a batch file
    pd.DataFrame({"transaction_id": [3, 98], "tx_fraud": [1, 1]}).to_csv(batch, index=False)
    joined, unknown, counts = join(capture, [batch])
    assert counts.received == 6
    assert counts.unique == 5
    assert counts.duplicates == 1
    assert counts.matched == 3
    assert counts.unknown == 2
    assert sorted(unknown["transaction_id"]) == [98, 99]
    labels = dict(zip(joined["transaction_id"], joined["tx_fraud"], strict=True))
    assert labels[1] == 1  # the latest label wins
    assert labels[3] == 1
    assert pd.isna(labels[4])  # no label yet: unlabelled, not dropped
    assert len(joined) == 5


def test_no_labels_yet(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    _predictions(capture / "date=2026-11-01/part-1.jsonl", [{"transaction_id": 1}])
    joined, unknown, counts = join(capture)
    assert counts.received == 0
    assert joined["tx_fraud"].isna().all()
    assert unknown.empty


def test_a_window_by_transaction_time_with_features_as_columns(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    _predictions(
        capture / "date=2026-11-01/part-1.jsonl",
        [
            {
                "captured_at": f"2026-11-01T00:00:0{i}+00:00",
                "transaction_id": i % 3,  # 0 and 1 are scored twice: the latest counts
                "tx_datetime": f"2018-06-0{1 + i % 3}T12:00:00",
                "features": {"f1": float(i), "f2": 2.0 * i},
                "fraud_probability": i / 10,
                "model_version": 1 + i // 3,
            }
            for i in range(5)
        ],
    )
    window, _, _ = join(
        capture, start=dt.datetime(2018, 6, 1), end=dt.datetime(2018, 6, 3)
    )  # [June 1, June 3): transactions 0 and 1, not 2
    assert sorted(window["transaction_id"]) == [0, 1]
    assert {"f1", "f2", "tx_fraud"} <= set(window.columns)
    assert "features" not in window.columns
    latest = window.set_index("transaction_id")
    assert list(latest.loc[[0, 1], "f1"]) == [3.0, 4.0]
    assert list(latest.loc[[0, 1], "model_version"]) == [2, 2]
