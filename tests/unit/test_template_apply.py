"""template/apply.py on a copy of the identity files: values, quoting, idempotency, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.config import load_pipeline_config, load_project_config
from template import apply
from tests.conftest import REPO_ROOT

FILES = ("configs/project.yaml", "configs/pipeline.yaml", "pyproject.toml", "uv.lock", "README.md")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker/compose.yaml").write_text("services: {}\n")
    (tmp_path / "tests/unit").mkdir(parents=True)
    (tmp_path / "tests/unit/test_docker.py").write_text("")
    (tmp_path / ".env.example").write_text(
        f"COMPOSE_PROJECT_NAME={apply.read_identity(REPO_ROOT)['slug']}\nFRAUDOPS_ADMIN_TOKEN=\n"
    )
    return tmp_path


def _apply(root: Path, *args: str) -> int:
    return apply.main([*args, "--root", str(root)])


def test_apply_sets_every_place_and_is_idempotent(project: Path) -> None:
    args = ("--name", "Acme: Risk #1", "--slug", "acme-risk", "--containers", "no")
    args += ("--source", "file", "--source-path", "data/x.csv", "--column-map", '{"c": "tx_fraud"}')
    assert _apply(project, *args) == 0
    first = {p: p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file()}
    assert _apply(project, *args) == 0
    assert {p: p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file()} == first
    identity = load_project_config(project / "configs/project.yaml")
    assert identity.name == "Acme: Risk #1"  # quoted where YAML needs it
    assert identity.registered_model_name == "acme-risk-detector"
    source = load_pipeline_config(project / "configs/pipeline.yaml").source
    assert (source.kind, str(source.path), source.column_map) == (
        "file",
        "data/x.csv",
        {"c": "tx_fraud"},
    )
    assert "# TEMPLATE:" in (project / "configs/pipeline.yaml").read_text()  # comments kept
    assert (project / ".env.example").read_text().splitlines() == [
        "COMPOSE_PROJECT_NAME=acme-risk",
        "FRAUDOPS_ADMIN_TOKEN=",
    ]
    assert not (project / "docker").exists()
    assert not (project / "tests/unit/test_docker.py").exists()
    assert (project / "README.md").read_text().startswith("# Acme: Risk #1\n")
    assert yaml.safe_load((project / "configs/project.yaml").read_text())["slug"] == "acme-risk"


@pytest.mark.parametrize("name", ["2024", "Yes", "null", "a: b", 'say "hi"', "Ünïcode"])
def test_any_name_reads_back_as_the_same_string(project: Path, name: str) -> None:
    assert _apply(project, "--name", name, "--slug", "x") == 0
    assert load_project_config(project / "configs/project.yaml").name == name
    assert apply.read_identity(project)["name"] == name


def test_renaming_again_starts_from_the_current_identity(project: Path) -> None:
    assert _apply(project, "--name", "Acme Risk") == 0
    assert _apply(project, "--name", "Beta Bank", "--registered-model-name", "scorer") == 0
    identity = load_project_config(project / "configs/project.yaml")
    assert (identity.slug, identity.registered_model_name) == ("beta-bank", "scorer")
    assert 'name = "beta-bank"' in (project / "pyproject.toml").read_text()
    assert 'name = "beta-bank"\nversion' in (project / "uv.lock").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Acme", "--slug", "Acme_Risk"], "SLUG"),
        (["--name", " "], "NAME"),
        (["--name", "Acme", "--registered-model-name", "a b"], "MODEL"),
        (["--name", "Acme", "--source", "file"], "SOURCE_PATH"),
        (
            ["--name", "Acme", "--source", "file", "--source-path", "x.csv", "--column-map", "["],
            "COLUMN_MAP",
        ),
    ],
)
def test_bad_answers_are_named_and_change_nothing(
    project: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (project / "configs/project.yaml").read_text()
    assert _apply(project, *args) == 2
    assert message in capsys.readouterr().err
    assert (project / "configs/project.yaml").read_text() == before


@pytest.mark.parametrize(
    "source",
    [
        # flow style, as a YAML tool may write it
        "source: {kind: simulator, path: pipelines/generate.py, column_map: {}}\n",
        # a null written as an empty value, and the map over two lines
        "source:\n  kind: simulator\n  path:\n  column_map:\n    {}\n",
    ],
)
def test_source_is_set_whatever_the_layout(project: Path, source: str) -> None:
    """The template layer must not depend on how configs/pipeline.yaml is laid out."""
    config = project / "configs/pipeline.yaml"
    text = config.read_text()
    start = text.index("\nsource:\n") + 1
    end = text.index("\ngenerate:\n") + 1
    config.write_text(text[:start] + source + text[end:])
    args = ("--name", "Acme", "--source", "file", "--source-path", "data/x.parquet")
    assert _apply(project, *args, "--column-map", '{"card": "customer_id"}') == 0
    got = load_pipeline_config(config).source
    assert (got.kind, str(got.path), got.column_map) == (
        "file",
        "data/x.parquet",
        {"card": "customer_id"},
    )


def test_the_source_block_is_edited_line_by_line_when_other_sections_share_its_keys() -> None:
    """`engine.kind` (and any later `kind:`) is not `source.kind`: the committed config's
    `source:` lines are edited in place, every comment kept, not re-dumped by a library."""
    text = (REPO_ROOT / "configs/pipeline.yaml").read_text()
    values = {"kind": "file", "path": "data/x.csv", "column_map": {"c": "tx_fraud"}}
    edited = apply._set_source_lines(text, values)
    assert edited is not None
    assert edited.count("\n") == text.count("\n")
    assert '  column_map: {"c": "tx_fraud"}\n' in edited
