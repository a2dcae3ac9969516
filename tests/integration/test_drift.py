"""Drift reports on simulated production periods: injected drift is found, none is not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from monitoring.decisions import Quality, decide
from monitoring.reports import drift, quality
from pipelines.config import PipelineConfig, load_monitoring_config, load_pipeline_config
from pipelines.features import build_features
from pipelines.generate import simulate_history, simulate_production
from pipelines.io import write_parquet
from pipelines.schema import feature_columns
from pipelines.train import fit
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

WORLD = {
    "generate.n_customers": 1000,
    "generate.n_terminals": 2000,
    "generate.n_days": 60,
    "production.n_days": 14,
    "generate.fraud.compromised_terminals_per_day": 1,
    "generate.fraud.compromised_customers_per_day": 1,
}


@pytest.fixture(scope="module")
def world() -> tuple[PipelineConfig, pd.DataFrame]:
    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml", WORLD)
    return cfg, simulate_history(cfg.generate)


def _windows(
    cfg: PipelineConfig, history: pd.DataFrame, scenario: str, tmp: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    prod = simulate_production(cfg.generate, cfg.production.model_copy(update={"drift": scenario}))
    write_parquet(pd.concat([history, prod], ignore_index=True), tmp / "all.parquet")
    build_features(tmp / "all.parquet", tmp / "features.parquet", cfg.features)
    f = pd.read_parquet(tmp / "features.parquet")
    cut = prod["tx_datetime"].min()
    names = feature_columns(cfg.features)
    train = f[
        (f.tx_datetime < cut - pd.Timedelta(days=14))
        & (f.tx_datetime >= cut - pd.Timedelta(days=35))
    ]
    model = fit(cfg.train, train, names)
    ref = f[(f.tx_datetime < cut) & (f.tx_datetime >= cut - pd.Timedelta(days=14))].copy()
    cur = f[f.tx_datetime >= cut].copy()
    for frame in (ref, cur):
        frame["score"] = model.predict_proba(frame[names].astype(float))[:, 1]
    return ref, cur


@pytest.mark.parametrize(
    ("scenario", "on_drift", "with_labels"),
    [
        ("none", "OK", "OK"),  # the false-alarm check
        ("amount_inflation", "RETRAIN", "RETRAIN"),
        ("new_terminals", "WARN", "RETRAIN"),
        ("new_fraud_pattern", "OK", "RETRAIN"),  # invisible to drift; labels reveal it
    ],
)
def test_drift_scenarios(
    world: tuple[PipelineConfig, pd.DataFrame],
    tmp_path: Path,
    scenario: str,
    on_drift: str,
    with_labels: str,
) -> None:
    cfg, history = world
    mon = load_monitoring_config(REPO_ROOT / "configs/monitoring.yaml")
    ref, cur = _windows(cfg, history, scenario, tmp_path)
    summary = drift(
        ref,
        cur,
        feature_columns(cfg.features),
        "score",
        mon.sample_rows,
        mon.seed,
        out=tmp_path / "report",
    )
    alone = decide(summary.drift_share, summary.prediction_drift, None, None, mon.decisions)
    assert alone.verdict == on_drift, (summary.as_dict()["drifted"], alone.reasons)
    found = quality(ref, cur, "tx_fraud", "score", 0.5, out=tmp_path / "report")
    reference_ap = float(average_precision_score(ref["tx_fraud"], ref["score"]))
    judged = Quality(found.labelled_rows, found.average_precision)
    decision = decide(
        summary.drift_share, summary.prediction_drift, judged, reference_ap, mon.decisions
    )
    assert decision.verdict == with_labels, (summary.as_dict()["drifted"], decision.reasons)
    assert found.labelled_rows == len(cur)
    assert (tmp_path / "report/drift.html").stat().st_size > 10_000
    assert (tmp_path / "report/drift.json").exists()
    assert (tmp_path / "report/quality.html").stat().st_size > 10_000
