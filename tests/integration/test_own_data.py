"""Your own data by configuration alone: differently shaped transactions (other column names,
string identifiers, day-first text timestamps, integer cents; or mobile money in the PaySim
schema: hour steps, no transaction id, a categorical type and balances as features) go
through the whole lifecycle after editing nothing but `configs/`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines import schema
from pipelines.generate import simulate_history
from pipelines.source import stable_id
from serving.main import create_app
from tests.conftest import TINY, TINY_FLOORS, copy_project, flow_env, run, set_config, tiny_config
from tests.integration.conftest import serving_settings_in
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
    settings = serving_settings_in(project, tmp_path, monkeypatch)

    assert_last_day_replays_like_offline(settings, tmp_path)


TYPES = ["PAYMENT", "TRANSFER", "CASH_OUT", "DEBIT", "CASH_IN"]
ORIGIN = "2018-04-01"  # the tiny simulation's first day: its training dates stay valid


def paysim_transactions(tmp_path: Path) -> pd.DataFrame:
    """The simulator's tiny history in the public PaySim schema: `step` = hours since the
    origin (whole hours: many ties), string ids, no transaction id, a transaction type and
    balances, `isFlaggedFraud` (not used)."""
    ours = simulate_history(tiny_config(tmp_path).generate)
    rng = np.random.default_rng(3)
    hours = (ours[schema.TX_DATETIME] - pd.Timestamp(ORIGIN)) // pd.Timedelta(hours=1)
    old = rng.exponential(2_000.0, len(ours)).round(2)
    kind = rng.choice(TYPES, len(ours))
    return pd.DataFrame(
        {
            "step": hours,
            "type": kind,
            "amount": ours[schema.TX_AMOUNT],
            "nameOrig": ours[schema.CUSTOMER_ID].map(lambda i: f"C{1_000_000 + i}"),
            "oldbalanceOrg": old,
            "newbalanceOrig": (old - ours[schema.TX_AMOUNT]).round(2),
            "nameDest": ours[schema.TERMINAL_ID].map(lambda i: f"M{2_000_000 + i}"),
            "oldbalanceDest": 0.0,
            "newbalanceDest": 0.0,
            "isFraud": ours[schema.TX_FRAUD],
            "isFlaggedFraud": 0,
        }
    )


PAYSIM = {
    "source.kind": "file",
    "source.path": "data/external/paysim.csv",
    "source.column_map": {
        "step": schema.TX_DATETIME,
        "nameOrig": schema.CUSTOMER_ID,
        "nameDest": schema.TERMINAL_ID,
        "amount": schema.TX_AMOUNT,
        "isFraud": schema.TX_FRAUD,
    },
    "source.timestamp_format": "offset",
    "source.timestamp_origin": ORIGIN,
    "source.timestamp_unit": "hours",
    "source.hashed_ids": [schema.CUSTOMER_ID, schema.TERMINAL_ID],
    "source.transaction_id": "row_number",
    "train.start_date": "auto",  # the folds end on the data's last day
    "features.hour_of_day": True,
    "features.customer_since_previous_days": 7,
    "features.columns": [
        {"name": "type", "kind": "categorical", "categories": TYPES},
        {"name": "oldbalanceOrg", "kind": "numeric", "min": 0},
        {"name": "newbalanceOrig", "kind": "numeric"},
    ],
}


def test_mobile_money_runs_the_whole_lifecycle_by_config_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PaySim-shaped file: trained, registered and served with its declared columns as
    features (parity with the offline stage through the API's typed extra fields); a request
    without them, or with a type the declaration does not list, is a 422."""
    project = copy_project(tmp_path / "project", {**TINY, **TINY_FLOORS})
    theirs = paysim_transactions(tmp_path)
    (project / "data/external").mkdir(parents=True)
    theirs.to_csv(project / "data/external/paysim.csv", index=False)
    set_config(project, PAYSIM)
    changed = run(project, "git", "status", "--porcelain", "--untracked-files=no").splitlines()
    assert [line.split()[-1] for line in changed] == ["configs/pipeline.yaml"]

    out = run(project, sys.executable, "-m", "pipelines.flows", "lifecycle", env=flow_env(tmp_path))
    assert "champion: version 1 (promoted now)" in out, out
    assert "dropping 3 column(s)" in out, out  # isFlaggedFraud and the destination balances

    features = pd.read_parquet(project / "data/processed/features.parquet")
    assert len(features) == len(theirs)  # nothing quarantined
    assert features[schema.TRANSACTION_ID].tolist() == list(range(len(theirs)))
    first = theirs.iloc[0]
    row = features[features[schema.TRANSACTION_ID] == 0].iloc[0]
    assert row[schema.TX_DATETIME] == pd.Timestamp(ORIGIN) + pd.Timedelta(hours=first["step"])
    assert row[schema.CUSTOMER_ID] == stable_id(first["nameOrig"])
    assert row[f"type_is_{first['type']}"] == 1
    assert row["oldbalanceOrg"] == first["oldbalanceOrg"]
    metrics = json.loads((project / "metrics/train.json").read_text())
    print(f"\nmobile money (tiny): {json.dumps(metrics)[:600]}")

    settings = serving_settings_in(project, tmp_path, monkeypatch)

    # Whole hours: a customer's transactions of one step are tied, and offline each counts
    # the others of its step. Online they count for each other when they come in one batch
    # (a transaction scored alone cannot count those of its step still to come).
    assert_last_day_replays_like_offline(settings, tmp_path, batch_rows=1000)
    body = {
        "transaction_id": 10**12,
        "tx_datetime": str(features[schema.TX_DATETIME].max()).replace(" ", "T"),
        "customer_id": 1,
        "terminal_id": 2,
        "tx_amount": 5.0,
        "type": "PAYMENT",
        "oldbalanceOrg": 10.0,
        "newbalanceOrig": 5.0,
    }
    with TestClient(create_app(settings())) as client:
        assert client.post("/v1/score", json=body).status_code == 200
        for change in ({"type": "BITCOIN"}, {"oldbalanceOrg": -1.0}):
            r = client.post("/v1/score", json={**body, "transaction_id": 10**12 + 1, **change})
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["body", next(iter(change))]
        missing = {k: v for k, v in body.items() if k != "newbalanceOrig"}
        r = client.post("/v1/score", json={**missing, "transaction_id": 10**12 + 2})
        assert r.status_code == 422, r.text
        schema_doc = client.get("/openapi.json").json()["components"]["schemas"]["Transaction"]
        assert schema_doc["properties"]["type"]["enum"] == TYPES
        assert {"type", "oldbalanceOrg", "newbalanceOrig"} <= set(schema_doc["required"])
