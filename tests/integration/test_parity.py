"""Train/serve skew check: a simulated day replayed through /v1/score (one by one) or
/v1/score/batch (in time order, many per call) gives the offline features (to 1e-9) and the
offline model's scores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from pipelines import schema, tracking
from pipelines.config import load_pipeline_config
from pipelines.materialize import materialize
from pipelines.schema import feature_columns
from serving.main import create_app
from serving.schemas import request_types
from serving.settings import Settings
from tests.captures import read_predictions
from tests.conftest import MODEL_NAME

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("batch_rows", [0, 700], ids=["single", "batch"])
def test_replayed_day_matches_offline_features_and_scores(
    serving_settings: Callable[..., Settings], tmp_path: Path, batch_rows: int
) -> None:
    assert_last_day_replays_like_offline(serving_settings, tmp_path, batch_rows)


def assert_last_day_replays_like_offline(
    serving_settings: Callable[..., Settings], tmp_path: Path, batch_rows: int = 0
) -> None:
    """Replay the last day of the project in the working directory through /v1/score (or
    /v1/score/batch, `batch_rows` per call) and compare features (1e-9) and scores with the
    offline path, whatever `features:` says."""
    cfg = load_pipeline_config()
    offline = pd.read_parquet(cfg.paths.features)
    day = offline[schema.TX_DATETIME].max().normalize()
    start = dt.datetime.fromisoformat(str(day))
    materialize(cfg.paths.clean, tmp_path / "seed", cfg.features, as_of=start)
    replay = offline[offline[schema.TX_DATETIME] >= day].sort_values(
        [schema.TX_DATETIME, schema.TRANSACTION_ID]
    )
    settings = serving_settings(**{"online_store.seed_dir": str(tmp_path / "seed")})
    served = {}
    request = TypeAdapter(request_types(cfg.features).transaction)  # declared columns too
    with TestClient(create_app(settings)) as client:
        bodies = [
            request.dump_python(request.validate_python(row._asdict()), mode="json")
            for row in replay[list(schema.request_columns(cfg.features))].itertuples(index=False)
        ]
        if batch_rows:  # earlier transactions of a batch count for later ones, as offline
            for i in range(0, len(bodies), batch_rows):
                part = bodies[i : i + batch_rows]
                r = client.post("/v1/score/batch", json={"transactions": part})
                assert r.status_code == 200, r.text
                for body, s in zip(part, r.json()["scores"], strict=True):
                    served[body["transaction_id"]] = s["fraud_probability"]
        for body in [] if batch_rows else bodies:
            r = client.post("/v1/score", json=body)
            assert r.status_code == 200, r.text
            served[body["transaction_id"]] = r.json()["fraud_probability"]
    captured = read_predictions(Path(settings.capture.dir))
    assert len(captured) == len(replay) > 100
    names = feature_columns(cfg.features)
    online = pd.DataFrame(
        [{"transaction_id": c["transaction_id"], **c["features"]} for c in captured]
    ).set_index("transaction_id")
    expected = replay.set_index(schema.TRANSACTION_ID)[names].astype(float)
    for name in names:
        np.testing.assert_allclose(
            online.loc[expected.index, name], expected[name], rtol=0, atol=1e-9, err_msg=name
        )
    model, _ = tracking.load_model(MODEL_NAME, 1)
    offline_scores = model.predict_proba(expected)[:, 1]
    np.testing.assert_allclose(
        [served[t] for t in expected.index], offline_scores, rtol=0, atol=1e-9
    )
