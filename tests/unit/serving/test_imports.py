"""The scoring service stays light: importing it pulls in no orchestration, monitoring or
pandas, and from the offline package only the shared contracts."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO_ROOT

# shap too: the explainer is built on the first request that asks for reasons, not at start.
FORBIDDEN = (
    "prefect",
    "dvc",
    "evidently",
    "duckdb",
    "pandas",
    "stack",
    "pyspark",
    "sqlglot",
    "shap",
)
# What serving may take from `pipelines`: the data contracts, the config models, the errors,
# the one MLflow adapter and the one shap adapter (reasons, the same offline and online).
SHARED = {
    "pipelines.config",
    "pipelines.errors",
    "pipelines.schema",
    "pipelines.tracking",
    "pipelines.reasons",
}


def test_importing_serving_main_imports_no_heavy_or_offline_library() -> None:
    code = (
        "import sys, serving.main, serving.__main__; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_serving_takes_only_the_shared_contracts_from_pipelines() -> None:
    taken: dict[str, set[str]] = {}
    for path in (REPO_ROOT / "serving").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
                if node.module == "pipelines":
                    names = [f"pipelines.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[0] == "pipelines":
                    taken.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    extra = {name: sorted(where) for name, where in taken.items() if name not in SHARED}
    assert not extra, f"serving imports offline modules: {extra}"
