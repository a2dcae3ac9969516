"""The scoring service stays light: importing it pulls in no orchestration or monitoring."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

FORBIDDEN = ("prefect", "dvc", "evidently", "duckdb")


def test_importing_serving_main_imports_no_prefect_dvc_evidently() -> None:
    code = (
        "import sys, serving.main; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
