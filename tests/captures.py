"""Prediction logs written and read the way the scoring service does (serving/capture.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving.capture import columns_of, decode, encode

DEFAULTS: dict[str, Any] = {
    "captured_at": "2026-11-01T00:00:00+00:00",
    "model_name": "a-registered-model",
    "model_version": 1,
    "tx_datetime": "2018-06-01T00:00:00",
    "customer_id": 0,
    "terminal_id": 0,
    "tx_amount": 0.0,
    "features": {},
    "fraud_probability": 0.0,
    "is_fraud": False,
}


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append `rows` as the service would log them had each been its own request."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        for row in rows:
            handle.write(encode(columns_of([{**DEFAULTS, **row}])))


def read_predictions(capture_dir: Path) -> list[dict[str, Any]]:
    """Every captured row, one flat record each, in file and line order."""
    rows = []
    for path in sorted(capture_dir.glob("date=*/part-*.jsonl")):
        for line in path.read_bytes().splitlines():
            rows.extend(decode(line))
    return rows
