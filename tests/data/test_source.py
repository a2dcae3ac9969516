"""Bring your own data: a configured file with a column map replaces the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines import schema, stages
from pipelines.__main__ import main
from pipelines.config import Source
from pipelines.errors import ConfigError, DataContractError
from pipelines.generate import simulate_history
from pipelines.io import read_table
from pipelines.source import convert, load_source, stable_id
from tests.conftest import REPO_ROOT, TINY, tiny_config

_STAGE_FILES = ("raw", "clean", "quarantine")

THEIR_NAMES = {
    "TRANSACTION_ID": schema.TRANSACTION_ID,
    "TX_DATETIME": schema.TX_DATETIME,
    "CUSTOMER_ID": schema.CUSTOMER_ID,
    "TERMINAL_ID": schema.TERMINAL_ID,
    "TX_AMOUNT": schema.TX_AMOUNT,
    "TX_FRAUD": schema.TX_FRAUD,
}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_own_file_with_column_map_goes_through_validation(tmp_path: Path, suffix: str) -> None:
    theirs = simulate_history(tiny_config(tmp_path).generate)
    theirs = theirs.drop(columns=[schema.TX_FRAUD_SCENARIO]).rename(
        columns={v: k for k, v in THEIR_NAMES.items()}
    )
    path = tmp_path / f"theirs{suffix}"
    theirs.to_csv(path, index=False) if suffix == ".csv" else theirs.to_parquet(path)
    cfg = tiny_config(
        tmp_path,
        **{"source.kind": "file", "source.path": str(path), "source.column_map": THEIR_NAMES},
    )
    stages.generate(cfg)
    stages.validate(cfg)
    clean = read_table(cfg.paths.clean)
    assert len(clean) == len(theirs)
    assert (clean[schema.TX_FRAUD_SCENARIO] == 0).all()


def test_missing_column_is_named(tmp_path: Path) -> None:
    df = simulate_history(tiny_config(tmp_path).generate).drop(columns=[schema.TERMINAL_ID])
    path = tmp_path / "theirs.parquet"
    df.to_parquet(path)
    cfg = tiny_config(tmp_path, **{"source.kind": "file", "source.path": str(path)})
    with pytest.raises(DataContractError, match=r"missing required column.*terminal_id"):
        stages.generate(cfg)
    assert not cfg.paths.raw.exists()


def test_conversions_give_the_contract_values(tmp_path: Path) -> None:
    ours = simulate_history(tiny_config(tmp_path).generate).head(500)
    theirs = pd.DataFrame(
        {
            "id": ours[schema.TRANSACTION_ID].map(lambda i: f"X{i}"),
            "when": ours[schema.TX_DATETIME].dt.strftime("%d/%m/%Y %H:%M:%S"),
            "card": ours[schema.CUSTOMER_ID].map(lambda i: f"C{i:06d}"),
            "shop": ours[schema.TERMINAL_ID],
            "cents": (ours[schema.TX_AMOUNT] * 100).round().astype("int64"),
            "label": ours[schema.TX_FRAUD],
        }
    )
    source = Source(
        kind="file",
        path=tmp_path / "theirs.csv",
        column_map=dict(zip(theirs.columns, schema.REQUIRED_COLUMNS, strict=True)),
        timestamp_format="%d/%m/%Y %H:%M:%S",
        amount_divisor=100,
        hashed_ids=["transaction_id", "customer_id"],
    )
    theirs.to_csv(tmp_path / "theirs.csv", index=False)
    got = load_source(source)
    assert (got[schema.TX_DATETIME] == ours[schema.TX_DATETIME].dt.floor("s")).all()
    np.testing.assert_array_equal(got[schema.TX_AMOUNT], ours[schema.TX_AMOUNT])
    assert got[schema.CUSTOMER_ID].iloc[0] == stable_id(theirs["card"].iloc[0])
    assert got[schema.TRANSACTION_ID].is_unique
    assert (got[schema.TERMINAL_ID] == ours[schema.TERMINAL_ID]).all()


def test_stable_id_is_a_fixed_non_negative_int64() -> None:
    # Fixed values: another implementation (a gateway in front of serving) must agree.
    assert stable_id("C000123") == 6506699624341775082
    assert stable_id("T0456") == 482593214495642734
    assert 0 <= stable_id("") < 2**63


@pytest.mark.parametrize("unit", ["epoch_s", "epoch_ms"])
def test_epoch_timestamps_and_bad_values_become_null(tmp_path: Path, unit: str) -> None:
    scale = 1 if unit == "epoch_s" else 1000
    raw = pd.DataFrame(
        {
            "transaction_id": [1, 2],
            "tx_datetime": [1_522_540_800 * scale, "soon"],
            "customer_id": [1, 2],
            "terminal_id": [1, 2],
            "tx_amount": [150, "n/a"],
            "tx_fraud": [0, 1],
        }
    )
    source = Source(kind="file", path=tmp_path / "x.csv", timestamp_format=unit, amount_divisor=100)
    got = convert(raw.assign(tx_fraud_scenario=0), source)
    assert got[schema.TX_DATETIME].iloc[0] == pd.Timestamp("2018-04-01")
    assert got[schema.TX_AMOUNT].iloc[0] == 1.5
    assert got[schema.TX_DATETIME].isna().iloc[1]
    assert got[schema.TX_AMOUNT].isna().iloc[1]


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"timestamp_format": "dd/mm/yyyy"}, "strftime format"),
        ({"amount_divisor": 0}, "amount_divisor"),
        ({"hashed_ids": ["customer_id", "customer_id"]}, "must not repeat"),
        ({"hashed_ids": ["tx_amount"]}, "hashed_ids"),
    ],
)
def test_bad_source_options_are_named(tmp_path: Path, update: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(tmp_path, **{f"source.{k}": v for k, v in update.items()})


def _cli(tmp_path: Path, *args: str, **overrides: object) -> int:
    """`python -m pipelines` on the project's config at tiny scale, writing under `tmp_path`."""
    paths = {f"paths.{name}": str(tmp_path / name) for name in ("feedback", "metrics")}
    paths |= {f"paths.{name}": str(tmp_path / f"{name}.parquet") for name in _STAGE_FILES}
    tiny = {key: value for key, value in TINY.items() if key.startswith("generate.")}
    sets = [f"--set={key}={value}" for key, value in {**tiny, **paths, **overrides}.items()]
    return main(["--config", str(REPO_ROOT / "configs/pipeline.yaml"), *sets, *args])


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_failed_generate_leaves_no_previous_raw_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(tmp_path, "generate") == 0
    raw = tmp_path / "raw.parquet"
    assert raw.exists()
    df = simulate_history(tiny_config(tmp_path).generate).drop(columns=[schema.TERMINAL_ID])
    df.to_csv(tmp_path / "theirs.csv", index=False)
    theirs = {"source.kind": "file", "source.path": str(tmp_path / "theirs.csv")}
    capsys.readouterr()
    assert _cli(tmp_path, "generate", **theirs) == 1
    assert "missing required column(s) terminal_id" in _one_error_line(capsys.readouterr().err)
    assert not raw.exists()
    assert _cli(tmp_path, "validate", **theirs) == 1  # names the missing raw file
    assert _one_error_line(capsys.readouterr().err) == f"error: {raw}: file not found"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_without_rows_stops_generate_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    empty = simulate_history(tiny_config(tmp_path).generate).head(0)
    path = tmp_path / f"theirs{suffix}"
    empty.to_csv(path, index=False) if suffix == ".csv" else empty.to_parquet(path)
    code = _cli(tmp_path, "generate", **{"source.kind": "file", "source.path": str(path)})
    assert code == 1
    assert _one_error_line(capsys.readouterr().err) == f"error: {path}: has no rows"
    assert not (tmp_path / "raw.parquet").exists()
