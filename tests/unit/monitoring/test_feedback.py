"""Feedback: labelled captured transactions become raw rows the `generate` stage appends."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from monitoring.feedback import FILE, Feedback, enough, export, retrain_start
from pipelines import schema
from pipelines.config import Features
from tests.captures import write_predictions


def _capture(root: Path, declared: dict[str, object] | None = None) -> None:
    rows = [
        {
            "captured_at": f"2026-11-0{1 + 2 * (i == 4)}T00:00:00+00:00",
            "transaction_id": i
            if i < 4
            else 3,  # transaction 3 was replayed: its latest capture counts
            "tx_datetime": f"2018-06-{1 + i:02d}T10:00:00",
            "customer_id": 10 + i,
            "terminal_id": 20 + i,
            "tx_amount": 1.5 * i,
            "features": {"tx_amount": 1.5 * i},
            "fraud_probability": 0.1,
            "model_version": 1,
            **(declared or {}),
        }
        for i in range(5)
    ]
    labels = [
        {"received_at": "2026-11-09T00:00:00", "transaction_id": t, "tx_fraud": t % 2}
        for t in (0, 1, 3, 77)
    ]  # 2 has no label yet; 77 was never scored
    write_predictions(root / "date=2026-11-01" / "part-1.jsonl", rows)
    (root / "labels/date=2026-11-09").mkdir(parents=True)
    (root / "labels/date=2026-11-09/part-1.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in labels)
    )


def test_only_labelled_rows_with_the_raw_contract(tmp_path: Path) -> None:
    _capture(tmp_path / "capture")
    found = export(tmp_path / "capture", None, tmp_path / "feedback")
    raw = pd.read_parquet(tmp_path / "feedback" / FILE)
    assert list(raw[schema.TRANSACTION_ID]) == [0, 1, 3]
    assert list(raw[schema.TX_FRAUD]) == [0, 1, 1]
    assert dict(raw.dtypes.astype(str)) == schema.RAW_DTYPES
    assert (raw[schema.TX_FRAUD_SCENARIO] == 0).all()
    assert found == Feedback(3, dt.date(2018, 6, 1), dt.date(2018, 6, 5))
    assert found.days == 5


def test_nothing_labelled_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "capture").mkdir()
    assert export(tmp_path / "capture", None, tmp_path / "feedback") == Feedback(0, None, None)
    assert not (tmp_path / "feedback").exists()


def test_the_training_block_must_lie_in_production() -> None:
    three_weeks = Feedback(100, dt.date(2018, 6, 1), dt.date(2018, 6, 21))
    assert enough(three_weeks, 7, 7, 7)
    assert not enough(Feedback(100, dt.date(2018, 6, 1), dt.date(2018, 6, 20)), 7, 7, 7)
    # The test block then ends on the last labelled day; training starts on the first.
    assert retrain_start(three_weeks, 7, 7, 7) == dt.date(2018, 6, 1)


def test_declared_columns_come_back_for_a_retrain(tmp_path: Path) -> None:
    """`features.columns`: the request's declared values are captured and fed back as the
    raw columns `generate` and `validate` expect, typed."""
    declared = Features.model_validate(
        {
            "label_delay_days": 7,
            "customer_windows_days": [1],
            "terminal_windows_days": [1],
            "night_max_hour": 6,
            "columns": [
                {"name": "type", "kind": "categorical", "categories": ["PAYMENT", "TRANSFER"]},
                {"name": "balance", "kind": "numeric"},
            ],
        }
    ).columns
    _capture(tmp_path / "capture", {"type": "TRANSFER", "balance": 12.5})
    export(tmp_path / "capture", None, tmp_path / "feedback", declared)
    raw = pd.read_parquet(tmp_path / "feedback" / FILE)
    assert dict(raw.dtypes.astype(str)) == schema.raw_dtypes(declared)
    assert list(raw["type"]) == ["TRANSFER"] * 3
    assert list(raw["balance"]) == [12.5] * 3
