"""Every project module a DVC stage imports is among that stage's `deps:` in `dvc.yaml`.

The imports are derived from the code (an AST walk from `python -m pipelines <stage>`), so a
new module cannot be forgotten: editing anything a stage runs must re-run that stage.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

PACKAGES = ("pipelines", "serving", "monitoring")
# The two dispatchers: of these only the module level and the stage's own runner count.
ENTRY = REPO_ROOT / "pipelines/__main__.py"
RUNNERS = REPO_ROOT / "pipelines/stages.py"


def _module_file(name: str) -> Path | None:
    """The file of project module `name` (a package's `__init__.py`), or None if not ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(nodes: list[ast.stmt] | ast.AST) -> set[str]:
    """Dotted names imported anywhere in `nodes` (`from a import b` gives a and a.b)."""
    found: set[str] = set()
    roots = nodes if isinstance(nodes, list) else [nodes]
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    return [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.ClassDef)]


def _with_packages(path: Path) -> set[Path]:
    """A module and the `__init__.py` of every package above it (Python imports them too)."""
    files = {path}
    parent = path.parent
    while parent != REPO_ROOT and (parent / "__init__.py").exists():
        files.add(parent / "__init__.py")
        parent = parent.parent
    return files


def stage_imports(stage: str) -> set[str]:
    """Repo-relative files of every project module `python -m pipelines <stage>` can run."""
    entry = ast.parse(ENTRY.read_text())
    runners = ast.parse(RUNNERS.read_text())
    runner = next(
        (n for n in runners.body if isinstance(n, ast.FunctionDef) and n.name == stage), None
    )
    assert runner is not None, f"pipelines/stages.py has no runner for stage {stage!r}"
    names = _imports(_top_level(entry)) | _imports(_top_level(runners)) | _imports(runner)
    seen = {ENTRY, RUNNERS}
    todo = [f for n in names if (f := _module_file(n)) is not None]
    while todo:
        path = todo.pop()
        for file in _with_packages(path) - seen:
            seen.add(file)
            todo.extend(f for n in _imports(ast.parse(file.read_text())) if (f := _module_file(n)))
    return {str(p.relative_to(REPO_ROOT)) for p in seen for p in _with_packages(p)}


def _stages() -> dict[str, dict[str, object]]:
    return yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("stage", list(_stages()))
def test_every_imported_module_is_a_dep(stage: str) -> None:
    deps = {str(d) for d in _stages()[stage].get("deps", [])}  # type: ignore[attr-defined]
    code_deps = {d for d in deps if d.endswith(".py")}
    imported = stage_imports(stage)
    assert not imported - deps, f"dvc.yaml stage {stage!r} misses deps {sorted(imported - deps)}"
    extra = code_deps - imported
    assert not extra, f"dvc.yaml stage {stage!r} lists code it does not import: {sorted(extra)}"


def test_the_walk_sees_lazy_imports() -> None:
    """The runner's own imports count (`train` imports the protocol inside its runner); the
    commands that are not stages (`tune`, `score`) import theirs inside `_run`, so no stage
    depends on them."""
    assert "pipelines/train.py" in stage_imports("train")
    assert "pipelines/tune.py" not in stage_imports("train")
    assert "pipelines/config.py" in stage_imports("generate")
    assert "pipelines/tracking.py" not in stage_imports("features")  # registry commands only
