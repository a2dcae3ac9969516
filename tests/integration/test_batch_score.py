"""Batch transform (`python -m pipelines score`): a file scored offline by a registered
version gets the scores the service gives the same transactions (with the project's history,
as the service's online store holds it); bad rows are quarantined and counted, not dropped."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import reasons, schema
from pipelines.config import load_pipeline_config
from pipelines.schema import feature_columns
from tests.conftest import MODEL_NAME, one_line_failure, run

pytestmark = pytest.mark.integration


def _last_day(project: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The project's last day: its clean rows (the contract's shape, which the simulator
    source reads as is) and their offline features."""
    cfg = load_pipeline_config(project / "configs/pipeline.yaml")
    clean = pd.read_parquet(project / cfg.paths.clean)
    day = clean[schema.TX_DATETIME].max().normalize()
    features = pd.read_parquet(project / cfg.paths.features)
    return clean[clean[schema.TX_DATETIME] >= day], features.set_index(schema.TRANSACTION_ID)


def _offline_scores(project: Path, rows: pd.DataFrame, features: pd.DataFrame) -> np.ndarray:
    import mlflow.sklearn

    cfg = load_pipeline_config(project / "configs/pipeline.yaml")
    names = feature_columns(cfg.features)
    uri = (project / ".mlflow/mlflow.db").resolve()
    mlflow.set_tracking_uri(f"sqlite:///{uri}")
    model = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/1")
    x = features.loc[rows[schema.TRANSACTION_ID], names].astype(float)
    return np.asarray(model.predict_proba(x)[:, 1])


def _score(source: Path, output: Path, *more: str) -> list[str]:
    """The command line scoring `source` into `output`."""
    args = ["-m", "pipelines", "score", "--input", str(source), "--output", str(output)]
    return [sys.executable, *args, *more]


def test_a_day_scored_in_batch_gets_the_offline_and_served_scores(
    registered_project: Path, tmp_path: Path
) -> None:
    """With --with-history the day's windows hold the project's history: the features are the
    `features` stage's and the scores the champion's on them (to 1e-9; the parity test shows
    the service gives those too). One bad row is quarantined with its reason and counted."""
    day, features = _last_day(registered_project)
    bad = day.iloc[:1].assign(**{schema.TRANSACTION_ID: 10**15, schema.TX_AMOUNT: -1.0})
    pd.concat([day, bad]).to_parquet(tmp_path / "day.parquet")
    out = tmp_path / "scores.parquet"
    said = run(
        registered_project,
        *_score(tmp_path / "day.parquet", out, "--with-history"),
        env={"MLFLOW_TRACKING_URI": ""},
    )
    assert f"scored {len(day)} transactions with {MODEL_NAME} version 1" in said, said
    assert "1 quarantined in" in said, said
    scores = pd.read_parquet(out)
    reasons = [f"{kind}_{i}" for i in (1, 2, 3) for kind in ("reason", "contribution")]
    assert list(scores.columns) == [
        schema.TRANSACTION_ID,
        schema.TX_DATETIME,
        "fraud_probability",
        "is_fraud",
        "model_version",
        *reasons,
    ]
    assert scores[schema.TRANSACTION_ID].tolist() == sorted(day[schema.TRANSACTION_ID])
    assert (scores["model_version"] == 1).all()
    ordered = day.sort_values(schema.TRANSACTION_ID)
    want = _offline_scores(registered_project, ordered, features)
    np.testing.assert_allclose(scores["fraud_probability"], want, rtol=0, atol=1e-9)
    _check_reasons(registered_project, scores, ordered, features)
    quarantine = pd.read_parquet(tmp_path / "scores.quarantine.parquet")
    assert len(quarantine) == 1
    assert quarantine["reason"].iloc[0].startswith("tx_amount: greater_than_or_equal_to(0")

    # Without history the windows hold the file's own transactions only: fewer in each.
    alone = tmp_path / "alone.csv"
    run(
        registered_project,
        *_score(tmp_path / "day.parquet", alone),
        env={"MLFLOW_TRACKING_URI": ""},
    )
    assert len(pd.read_csv(alone)) == len(day)


def _check_reasons(
    project: Path, scores: pd.DataFrame, rows: pd.DataFrame, features: pd.DataFrame
) -> None:
    """Each row's three reasons are its three largest exact contributions, recomputed."""
    import mlflow.sklearn

    cfg = load_pipeline_config(project / "configs/pipeline.yaml")
    names = feature_columns(cfg.features)
    model = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/1")
    x = features.loc[rows[schema.TRANSACTION_ID], names].to_numpy(np.float64)
    contrib = reasons.Explainer(model, len(names)).contributions(x, "exact").values
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :3]
    for i in range(3):
        assert scores[f"reason_{i + 1}"].tolist() == [names[j] for j in order[:, i]]
        want = np.take_along_axis(contrib, order[:, i : i + 1], axis=1)[:, 0]
        np.testing.assert_allclose(scores[f"contribution_{i + 1}"], want, rtol=0, atol=1e-9)
    assert set(scores["reason_1"]) <= set(names)


def test_fast_reasons_and_none(registered_project: Path, tmp_path: Path) -> None:
    """--fast-reasons writes Saabas's; --reasons 0 writes the scores alone."""
    day, _ = _last_day(registered_project)
    day.head(200).to_parquet(tmp_path / "day.parquet")
    fast, bare = tmp_path / "fast.parquet", tmp_path / "bare.csv"
    env = {"MLFLOW_TRACKING_URI": ""}
    more = ("--reasons", "2", "--fast-reasons")
    said = run(registered_project, *_score(tmp_path / "day.parquet", fast, *more), env=env)
    assert "2 reasons each (approximate)" in said, said
    assert list(pd.read_parquet(fast).columns)[-4:] == [
        "reason_1",
        "contribution_1",
        "reason_2",
        "contribution_2",
    ]
    run(registered_project, *_score(tmp_path / "day.parquet", bare, "--reasons", "0"), env=env)
    assert "reason_1" not in pd.read_csv(bare).columns


def test_no_such_version_is_one_line(registered_project: Path, tmp_path: Path) -> None:
    day, _ = _last_day(registered_project)
    day.to_parquet(tmp_path / "day.parquet")
    out = tmp_path / "out.parquet"
    line = one_line_failure(
        registered_project,
        *_score(tmp_path / "day.parquet", out, "--version", "99"),
    )
    assert line.startswith("error: "), line
    assert "99" in line, line
    assert not out.exists()


def test_the_prefect_flow_scores_a_file(
    registered_project: Path, tmp_path: Path, prefect_api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fraud-score` (the `batch` deployment's flow) writes what the command writes."""
    from pipelines.flows.scoring import score_flow

    monkeypatch.chdir(registered_project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    day, _ = _last_day(registered_project)
    day.to_parquet(tmp_path / "day.parquet")
    out = tmp_path / "flow.parquet"
    result = score_flow(str(tmp_path / "day.parquet"), str(out), reasons=2)
    assert result["rows"] == len(day), result
    assert result["version"] == 1
    assert (result["reasons"], result["method"]) == (2, "exact")
    scores = pd.read_parquet(out)
    assert len(scores) == len(day)
    assert {"reason_1", "contribution_2"} <= set(scores.columns)
