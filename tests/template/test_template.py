"""The template layer: a Copier render of the current commit is a new, working project;
`copier update` replays cleanly; `make init` on a clone gives the same files as Copier."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from monitoring.flows import FLOW
from template import apply
from tests.conftest import REPO_ROOT, TINY, TINY_FLOORS, flow_env, run, set_config
from tests.template.conftest import (
    ANSWERS,
    NEW,
    TEMPLATE_ONLY,
    commit_all,
    committed_files,
    copier,
    head,
    render,
    tree,
    uv,
)

# A project made from the template with Copier is not a template itself (copier.yml is not
# copied); one made with `make init` on a clone still is, and runs these tests too.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (REPO_ROOT / "copier.yml").exists(), reason="not a template: no copier.yml"
    ),
]

DEFAULT = apply.read_identity(REPO_ROOT)
OWN_FILE_NO_CONTAINERS = {
    **NEW,
    "data_source": "file",
    "source_path": "data/external/payments.csv",
    "column_map": {"card": "customer_id", "when": "tx_datetime"},
    "include_containers": False,
}


# The monitoring flow's name is a flow name like `fraud-training`, not the monitoring
# experiment that shares its default spelling: its own definition and its deployment's name
# are not identity.
FLOW_NAME = re.compile(rf'FLOW = "{re.escape(FLOW)}"|{re.escape(FLOW)}/hourly')


def _token(value: str) -> re.Pattern[str]:
    """`value` as a whole identity token (not a prefix such as FRAUDOPS_ or fraudops_)."""
    return re.compile(rf"(?<![\w.-]){re.escape(value)}(?![\w-])")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The current commit rendered with the new identity."""
    return render(tmp_path_factory.mktemp("render") / NEW["slug"], NEW)


def test_render_has_the_committed_tree_and_the_answers_file(generated: Path) -> None:
    expected = (committed_files() - TEMPLATE_ONLY) | {ANSWERS}
    assert set(tree(generated)) == expected
    answers = (generated / ANSWERS).read_text()
    assert f"project_name: {NEW['project_name']}" in answers
    assert "_commit:" in answers


def test_no_default_identity_is_left(generated: Path) -> None:
    new = apply.read_identity(generated)
    slug = NEW["slug"]
    assert new == {
        "name": NEW["project_name"],
        "slug": slug,
        "experiment_name": slug,
        "monitoring_experiment_name": f"{slug}-monitoring",
        "registered_model_name": f"{slug}-detector",
    }
    project = (generated / apply.PROJECT).read_text()
    for field, value in DEFAULT.items():
        assert not _token(value).search(project), f"{apply.PROJECT}: default {field} left"
    # Every other identity place: its pattern, filled with the defaults, matches nowhere.
    escaped = {k: re.escape(v) for k, v in DEFAULT.items()}
    seen = set()
    for place in apply.PLACES:
        for path in generated.glob(place.glob):
            seen.add(path.relative_to(generated).as_posix())
            left = re.search(place.pattern.format(**escaped), path.read_text())
            assert left is None, f"{path.name}: {left.group(0) if left else ''!r} left"
    assert {"README.md", "pyproject.toml", "uv.lock"} <= seen
    assert (generated / "README.md").read_text().startswith(f"# {NEW['project_name']}\n")
    assert f'name = "{slug}"' in (generated / "pyproject.toml").read_text()
    # Names no code may hard-code: nowhere in the whole project (but the flow's name).
    for name, data in tree(generated).items():
        text = FLOW_NAME.sub("", data.decode("utf-8", errors="replace"))
        for field in ("registered_model_name", "monitoring_experiment_name"):
            assert not _token(DEFAULT[field]).search(text), f"{name}: {DEFAULT[field]!r}"


def test_generated_project_passes_lint_unit_tests_and_make_run(
    generated: Path, tmp_path: Path
) -> None:
    commit_all(generated)
    make = ["make", f"UV={uv()}"]
    run(generated, *make, "lint")
    out = run(generated, *make, "test-fast", "PYTEST_ARGS=tests/unit tests/data -q -x")
    assert " passed" in out
    set_config(generated, {**TINY, **TINY_FLOORS})  # `make run` on tiny data
    out = run(generated, *make, "run", env=flow_env(tmp_path))
    assert "champion: version 1 (promoted now)" in out, out
    with sqlite3.connect(generated / ".mlflow/mlflow.db") as db:
        names = {row[0] for row in db.execute("SELECT name FROM registered_models")}
        experiments = {row[0] for row in db.execute("SELECT name FROM experiments")}
    assert names == {f"{NEW['slug']}-detector"}
    assert NEW["slug"] in experiments


@pytest.mark.parametrize("answers", [NEW, OWN_FILE_NO_CONTAINERS], ids=["simulator", "own-file"])
def test_copier_update_without_template_changes_changes_nothing(
    tmp_path: Path, answers: dict[str, Any]
) -> None:
    project = render(tmp_path / NEW["slug"], answers)
    commit_all(project)
    copier(project, "update", "--quiet", "--trust", "--defaults", "--vcs-ref", head())
    assert run(project, "git", "status", "--porcelain") == ""


def test_make_init_on_a_clone_equals_a_copier_render(tmp_path: Path) -> None:
    rendered = tree(render(tmp_path / "copier", OWN_FILE_NO_CONTAINERS))
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(REPO_ROOT), str(clone))
    run(clone, "git", "checkout", "-q", head())
    run(
        clone,
        "make",
        "init",
        f"NAME={NEW['project_name']}",
        f"SLUG={NEW['slug']}",
        "SOURCE=file",
        "SOURCE_PATH=data/external/payments.csv",
        'COLUMN_MAP={"card": "customer_id", "when": "tx_datetime"}',
        "CONTAINERS=no",
    )
    cloned = tree(clone)
    assert set(rendered) - {ANSWERS} == set(cloned) - TEMPLATE_ONLY
    differ = [name for name in set(rendered) - {ANSWERS} if rendered[name] != cloned[name]]
    assert differ == []
    assert not any(name.startswith("docker/") for name in cloned)
    assert "tests/unit/test_docker.py" not in cloned
    source = cloned["configs/pipeline.yaml"].decode()
    assert "  kind: file" in source
    assert '  column_map: {"card": "customer_id", "when": "tx_datetime"}' in source
    # Idempotent: a second run changes nothing.
    run(
        clone, "make", "init", f"NAME={NEW['project_name']}", f"SLUG={NEW['slug']}", "CONTAINERS=no"
    )
    assert tree(clone) == cloned
