"""The protocol sized to the data: `auto` start dates, and one line when the folds do not fit."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Collection
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines import schema
from pipelines.__main__ import main
from pipelines.config import PipelineConfig, apply_overrides, load_pipeline_config
from pipelines.coverage import DataSpan, fitting_folds, place, resolve_folds
from pipelines.errors import ProtocolError
from pipelines.train import folds, scoring_block, with_day
from tests.conftest import REPO_ROOT, one_line_failure

JAN = DataSpan(dt.date(2024, 1, 1), dt.date(2024, 1, 30))  # the 30 days


def _features(
    path: Path,
    span: DataSpan,
    skip: Collection[dt.date] = (),
    fraud_on: Callable[[dt.date], bool] | None = None,
) -> Path:
    """Ten transactions a day over `span` (none on `skip`), the first one of each day a fraud
    (on the days `fraud_on` accepts); every transaction on its own card."""
    rows = []
    for n in range(span.days):
        day = span.first_day + dt.timedelta(days=n)
        if day in skip:
            continue
        for i in range(10):
            fraud = int(i == 0 and (fraud_on is None or fraud_on(day)))
            rows.append((pd.Timestamp(day) + pd.Timedelta(hours=1 + i), n * 100 + i, fraud))
    frame = pd.DataFrame(rows, columns=[schema.TX_DATETIME, schema.CUSTOMER_ID, schema.TX_FRAUD])
    frame.to_parquet(path)
    return path


def _config(tmp_path: Path, **changes: object) -> Path:
    """The project's config, its paths under `tmp_path`, with dotted-key changes."""
    data = apply_overrides(
        yaml.safe_load((REPO_ROOT / "configs/pipeline.yaml").read_text()), changes
    )
    data["paths"] = {k: str(tmp_path / k) for k in data["paths"]}
    data["paths"]["features"] = str(tmp_path / "features.parquet")
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _train(tmp_path: Path, capsys: pytest.CaptureFixture[str], **changes: object) -> str:
    """Run `python -m pipelines train` in-process; return its one error line."""
    assert main(["--config", str(_config(tmp_path, **changes)), "train"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "Traceback" not in err
    return err


def _default() -> PipelineConfig:
    return load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml")


def test_auto_ends_fold_0_on_the_last_day_with_anchor_latest() -> None:
    cfg = _default().train.model_copy(update={"start_date": "auto", "folds": 2})
    placed = place(cfg, 7, JAN)
    assert placed.start_date == dt.date(2024, 1, 10)
    f0, f1 = folds(placed, 7)
    assert (f0.test_start, f0.test_end) == (dt.date(2024, 1, 24), dt.date(2024, 1, 31))
    assert f1.train_start == dt.date(2024, 1, 3)


def test_auto_starts_the_earliest_fold_on_the_first_day_with_anchor_earliest() -> None:
    update = {"start_date": "auto", "folds": 2, "anchor": "earliest"}
    placed = place(_default().train.model_copy(update=update), 7, JAN)
    assert placed.start_date == dt.date(2024, 1, 1)
    f0, f1 = folds(placed, 7)
    assert f1.train_start == dt.date(2024, 1, 1)
    assert f0.test_end == dt.date(2024, 1, 29)  # 01-29 and 01-30 left over: less than a block


def test_the_resolved_dates_are_logged_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    overrides = {"train.start_date": "auto", "train.folds": 2}
    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml", overrides)
    with caplog.at_level("INFO", logger="pipelines.coverage"):
        resolved = resolve_folds(cfg, _features(tmp_path / "f.parquet", JAN))
    assert resolved == folds(place(cfg.train, 7, JAN), 7)
    assert caplog.messages == [
        "protocol: train.start_date auto (anchor latest) -> 2 folds over 2024-01-03..2024-01-30, "
        "fold 0 trains 2024-01-10..2024-01-16 and tests 2024-01-24..2024-01-30; the data has "
        "2024-01-01..2024-01-30",
        # 30 days of data: no fold has the 37 days of history its windows reach back.
        "protocol: fold(s) 0, 1 train from 2024-01-03, 2 day(s) after the data starts, while "
        "the feature windows reach 37 days back: their windows are partial and their metrics "
        "read low (more data before train.start_date, or fewer train.folds, avoids it)",
    ]


def test_the_default_configs_folds_are_unchanged(tmp_path: Path) -> None:
    cfg = _default()
    assert cfg.train.start_date == dt.date(2018, 7, 25)
    path = _features(tmp_path / "f.parquet", DataSpan(dt.date(2018, 4, 1), dt.date(2018, 9, 30)))
    resolved = resolve_folds(cfg, path)
    assert resolved == folds(cfg.train, cfg.features.label_delay_days)
    assert [f.train_start.isoformat() for f in resolved] == [
        "2018-07-25",
        "2018-07-18",
        "2018-07-11",
        "2018-07-04",
    ]
    assert (resolved[0].test_start, resolved[0].test_end) == (
        dt.date(2018, 8, 8),
        dt.date(2018, 8, 15),
    )


def test_the_largest_folds_count_that_fits() -> None:
    train = _default().train
    latest = train.model_copy(update={"start_date": dt.date(2024, 1, 10)})
    assert fitting_folds(latest, 7, JAN) == 2  # 01-10 and 01-03; 12-27 is before the data
    assert (
        fitting_folds(latest.model_copy(update={"start_date": dt.date(2024, 1, 11)}), 7, JAN) == 0
    )
    earliest = train.model_copy(update={"start_date": dt.date(2024, 1, 1), "anchor": "earliest"})
    assert fitting_folds(earliest, 7, JAN) == 2


def test_too_little_data_is_one_line_from_the_command_line(tmp_path: Path) -> None:
    _features(tmp_path / "features.parquet", JAN)
    config = _config(tmp_path, **{"train.start_date": "2024-01-01", "train.anchor": "earliest"})
    last = one_line_failure(
        REPO_ROOT, sys.executable, "-m", "pipelines", "--config", str(config), "train"
    )
    assert last == (
        "error: train: the protocol needs 42 days (4 folds of 7 train + 7 delay + 7 test days, "
        "2024-01-01..2024-02-11); the data has 30 days (2024-01-01..2024-01-30): set "
        "train.folds to 2 or shorten train.train_days / train.test_days, or move train.start_date"
    )
    assert not (tmp_path / "model").exists()


SHORTEN = "shorten train.train_days / train.test_days"


@pytest.mark.parametrize(
    ("changes", "advice"),
    [
        ({"train.start_date": "auto"}, f"set train.folds to 2 or {SHORTEN}"),
        ({}, f"set train.start_date to auto and train.folds to 2, or {SHORTEN}"),
        ({"train.folds": 1, "train.test_days": 30}, f"{SHORTEN} (one fold needs 44 days)"),
    ],
)
def test_the_line_says_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, object], advice: str
) -> None:
    _features(tmp_path / "features.parquet", JAN)
    err = _train(tmp_path, capsys, **changes)
    assert err.startswith("error: train: the protocol needs ")
    assert err.endswith(f"the data has 30 days (2024-01-01..2024-01-30): {advice}")


def test_a_block_with_one_class_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    training = {dt.date(2024, 1, 10) + dt.timedelta(days=n) for n in range(7)}
    _features(tmp_path / "features.parquet", JAN, fraud_on=lambda day: day not in training)
    err = _train(tmp_path, capsys, **{"train.start_date": "auto", "train.folds": 1})
    assert err == (
        "error: train: fold 0's training block 2024-01-10..2024-01-16 has 70 legitimate and 0 "
        "fraudulent transactions; every block needs both classes: lengthen train.train_days / "
        "train.test_days or move train.start_date"
    )


def test_an_empty_test_block_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test_days = {dt.date(2024, 1, 15) + dt.timedelta(days=n) for n in range(7)}
    _features(tmp_path / "features.parquet", JAN, skip=test_days)
    changes = {"train.start_date": "auto", "train.anchor": "earliest", "train.folds": 1}
    err = _train(tmp_path, capsys, **changes)
    assert err == (
        "error: train: fold 0's test block 2024-01-15..2024-01-21 has 0 legitimate and 0 "
        "fraudulent transactions; every block needs both classes: lengthen train.train_days / "
        "train.test_days or move train.start_date"
    )


def test_a_scoring_block_left_with_one_class_stops_before_any_metric() -> None:
    cfg = _default().train.model_copy(update={"start_date": dt.date(2024, 1, 1), "folds": 1})
    fold = folds(cfg, 7)[0]  # train 01-01..01-07, test 01-15..01-21
    frame = with_day(
        pd.DataFrame(
            {
                schema.TX_DATETIME: pd.to_datetime(["2024-01-02", "2024-01-16", "2024-01-17"]),
                schema.CUSTOMER_ID: [1, 1, 2],  # card 1's test fraud is known: it leaves
                schema.TX_FRAUD: [1, 1, 0],
            }
        )
    )
    with pytest.raises(ProtocolError) as caught:
        scoring_block(frame, fold)
    assert str(caught.value) == (
        "train: fold 0's test block 2024-01-15..2024-01-21 without known compromised cards has "
        "1 legitimate and 0 fraudulent transactions; every block needs both classes: lengthen "
        "train.train_days / train.test_days or move train.start_date"
    )
