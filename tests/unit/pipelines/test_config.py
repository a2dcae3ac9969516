"""Every committed YAML validates, dvc.yaml reads only keys that exist, bad values are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.config import (
    MonitoringConfig,
    PipelineConfig,
    load_pipeline_config,
    load_project_config,
    parse_override,
    typed_overrides,
)
from pipelines.errors import ConfigError
from tests.conftest import MODEL_NAME, REPO_ROOT


def test_every_config_file_validates() -> None:
    assert load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml").features.label_delay_days == 7
    project = load_project_config(REPO_ROOT / "configs/project.yaml")
    assert project.registered_model_name == MODEL_NAME


def test_serving_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.settings import load_settings

    monkeypatch.chdir(REPO_ROOT)
    settings = load_settings()
    assert settings.model.alias == "champion"
    assert settings.model_name == MODEL_NAME


def test_monitoring_config_validates() -> None:
    from pipelines.config import load_monitoring_config

    cfg = load_monitoring_config(REPO_ROOT / "configs/monitoring.yaml")
    assert cfg.decisions.warn_drift_share <= cfg.decisions.retrain_drift_share


def test_no_config_file_is_left_unvalidated() -> None:
    validated = {"pipeline.yaml", "project.yaml", "serving.yaml", "monitoring.yaml"}
    assert {p.name for p in (REPO_ROOT / "configs").glob("*.yaml")} <= validated


MODELS: dict[str, type] = {
    "configs/pipeline.yaml": PipelineConfig,
    "configs/monitoring.yaml": MonitoringConfig,
}


def _dvc_param_keys() -> list[tuple[str, str]]:
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    keys = []
    for stage in dvc["stages"].values():
        for entry in stage.get("params", []):
            assert isinstance(entry, dict), "params must name their config file explicitly"
            for file, names in entry.items():
                assert file in MODELS, f"dvc.yaml reads params from {file}, which has no model"
                keys.extend((file, name) for name in names)
    return keys


@pytest.mark.parametrize(("file", "key"), _dvc_param_keys())
def test_dvc_params_exist_in_the_model(file: str, key: str) -> None:
    node: type = MODELS[file]
    for part in key.split("."):
        fields = {f.alias or name: f for name, f in node.model_fields.items()}  # type: ignore[attr-defined]
        assert part in fields, f"dvc.yaml param {key!r}: {part!r} is not in the config model"
        node = fields[part].annotation  # type: ignore[assignment]


def test_dvc_paths_come_from_the_config() -> None:
    text = (REPO_ROOT / "dvc.yaml").read_text()
    cfg = load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml")
    for path in (cfg.paths.raw, cfg.paths.clean, cfg.paths.features):
        assert str(path) not in text, f"{path} is hard-coded in dvc.yaml; use ${{paths.*}}"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"generate.n_days": 0}, "generate.n_days"),
        ({"validate.max_quarantine_share": 1.5}, "validate.max_quarantine_share"),
        ({"production.drift": "meteor"}, "production.drift"),
        ({"features.customer_windows_days": [1, 1]}, "customer_windows_days"),
        ({"source.kind": "file"}, "source.path must end in .parquet or .csv"),
        (
            {"features.columns": [{"name": "balance", "kind": "numeric"}]},
            "features.columns (balance) are columns of your own data: they need source.kind: file",
        ),
        (
            {"features.columns": [{"name": "tx_amount", "kind": "numeric"}]},
            "tx_amount is a contract column",
        ),
        (
            {
                "features.columns": [{"name": "tx_hour", "kind": "numeric"}],
                "features.hour_of_day": True,
            },
            "tx_hour would be two features",
        ),
        (
            {"features.columns": [{"name": "a", "kind": "categorical", "categories": ["x", "x"]}]},
            "categories must not repeat",
        ),
        (
            {"features.columns": [{"name": "a b", "kind": "numeric"}]},
            "'kind': 'numeric'}]: String should match pattern",
        ),
        (
            {"features.columns": [{"name": "a", "kind": "text"}]},
            "expected tags: 'numeric', 'categorical'",
        ),
        (
            {"features.columns": [{"name": "a", "kind": "numeric", "min": 2, "max": 1}]},
            "a: min 2.0 > max 1.0",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_value(override: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml", override)
    assert named in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO_ROOT / "configs/pipeline.yaml").read_text())
    data["generate"]["n_cutsomers"] = 10
    bad = tmp_path / "pipeline.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"generate\.n_cutsomers: Extra inputs are not permitted"):
        load_pipeline_config(bad)


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        load_pipeline_config(REPO_ROOT / "configs/pipeline.yaml", {"generate.bogus": 1})


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_pipeline_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("generate: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pipeline_config(broken)


@pytest.mark.parametrize(
    ("text", "typed"),
    [
        ("train.start_date=2018-08-15", "2018-08-15"),  # unquoted, as anyone types it
        ("features.customer_windows_days=[1, 14]", [1, 14]),
        ("source.timestamp_format=%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M"),  # not a YAML directive
        ("generate.n_days=30", 30),
        ("train.estimator=random_forest", "random_forest"),
        ("validate.max_quarantine_share=0.05", 0.05),
    ],
)
def test_set_values_are_typed_by_the_model(text: str, typed: object) -> None:
    """`--set` text is typed by the config model; the typed value is plain JSON (a date is
    its ISO text), so it can be written to a params file and logged as a flow parameter."""
    key, raw = parse_override(text)
    values = typed_overrides(REPO_ROOT / "configs/pipeline.yaml", {key: raw})
    assert values == {key: typed}
    json.dumps(values)


def test_a_text_field_takes_text_that_reads_as_yaml() -> None:
    """`yes` and `null` are YAML's true and null; where the model wants text, they are text."""
    values = typed_overrides(REPO_ROOT / "configs/pipeline.yaml", {"paths.raw": "yes"})
    assert values == {"paths.raw": "yes"}
