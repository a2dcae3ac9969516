"""Labels joined to captured predictions: late, duplicate and unknown cases add up."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from monitoring.labels import join


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_late_duplicate_and_unknown_labels(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    _jsonl(
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
    _jsonl(capture / "date=2026-11-01/part-1.jsonl", [{"transaction_id": 1}])
    joined, unknown, counts = join(capture)
    assert counts.received == 0
    assert joined["tx_fraud"].isna().all()
    assert unknown.empty
