"""Your own data by configuration alone: differently shaped transactions (other column names,
string identifiers, day-first text timestamps, integer cents) go through the whole lifecycle
after editing nothing but `configs/`."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines import schema
from pipelines.generate import simulate_history
from pipelines.source import stable_id
from serving.settings import Settings, load_settings
from tests.conftest import TINY, TINY_FLOORS, copy_project, flow_env, run, set_config, tiny_config
from tests.integration.test_parity import assert_last_day_replays_like_offline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

THEIR_FORMAT = "%d/%m/%Y %H:%M:%S"


def their_transactions(tmp_path: Path) -> pd.DataFrame:
    """The simulator's tiny history, reshaped the way another company would export it."""
    ours = simulate_history(tiny_config(tmp_path).generate)
    return pd.DataFrame(
        {
            "booked_at": ours[schema.TX_DATETIME].dt.strftime(THEIR_FORMAT),
            "payment_ref": ours[schema.TRANSACTION_ID].map(lambda i: f"PAY-{i:08d}"),
            "card": ours[schema.CUSTOMER_ID].map(lambda i: f"C{i:06d}"),
            "pos_terminal": ours[schema.TERMINAL_ID].map(lambda i: f"T{i:04d}"),
            "amount_cents": (ours[schema.TX_AMOUNT] * 100).round().astype("int64"),
            "currency": "EUR",  # a column the contract does not use
            "chargeback": ours[schema.TX_FRAUD],
        }
    )


def test_own_data_runs_the_whole_lifecycle_by_config_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(tmp_path / "project", {**TINY, **TINY_FLOORS})
    theirs = their_transactions(tmp_path)
    (project / "data/external").mkdir(parents=True)
    theirs.to_csv(project / "data/external/payments.csv", index=False)
    set_config(
        project,
        {
            "source.kind": "file",
            "source.path": "data/external/payments.csv",
            "source.column_map": {
                "payment_ref": schema.TRANSACTION_ID,
                "booked_at": schema.TX_DATETIME,
                "card": schema.CUSTOMER_ID,
                "pos_terminal": schema.TERMINAL_ID,
                "amount_cents": schema.TX_AMOUNT,
                "chargeback": schema.TX_FRAUD,
            },
            "source.timestamp_format": THEIR_FORMAT,
            "source.amount_divisor": 100,
            "source.hashed_ids": [schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TERMINAL_ID],
            "features.customer_windows_days": [1, 7, 14],
            "features.terminal_windows_days": [7, 14],
        },
    )
    changed = run(project, "git", "status", "--porcelain", "--untracked-files=no").splitlines()
    assert [line.split()[-1] for line in changed] == ["configs/pipeline.yaml"]

    out = run(project, sys.executable, "-m", "pipelines.flows", "lifecycle", env=flow_env(tmp_path))
    assert "champion: version 1 (promoted now)" in out, out

    features = pd.read_parquet(project / "data/processed/features.parquet")
    assert len(features) == len(theirs)  # nothing quarantined
    windowed = sorted(c for c in features.columns if c.endswith("day_window"))
    assert windowed == sorted(
        [
            f"customer_id_{k}_{w}day_window"
            for w in (1, 7, 14)
            for k in ("nb_tx", "avg_amount", "amount_ratio")
        ]
        + [f"terminal_id_{k}_{w}day_window" for w in (7, 14) for k in ("nb_tx", "risk")]
    )
    first = theirs.iloc[0]
    row = features[features[schema.TRANSACTION_ID] == stable_id(first["payment_ref"])].iloc[0]
    assert row[schema.CUSTOMER_ID] == stable_id(first["card"])
    assert row[schema.TERMINAL_ID] == stable_id(first["pos_terminal"])
    assert row[schema.TX_AMOUNT] == first["amount_cents"] / 100
    assert row[schema.TX_DATETIME] == dt.datetime.strptime(first["booked_at"], THEIR_FORMAT)

    # Serving computes the same configured features online, for the hashed ids too.
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        base = {
            "online_store.sqlite_path": str(tmp_path / "online.db"),
            "capture.dir": str(tmp_path / "capture"),
            "model.poll_interval_s": 0,
        }
        for name, value in (environ or {}).items():
            monkeypatch.setenv(name, value)
        return load_settings(overrides={**base, **overrides})

    assert_last_day_replays_like_offline(settings, tmp_path)
