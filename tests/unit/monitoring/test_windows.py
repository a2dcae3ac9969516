"""Windows are read as seeded samples: at most the asked rows, the same rows every time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.windows import read_sample


def test_sample_is_bounded_seeded_and_column_limited(tmp_path: Path) -> None:
    path = tmp_path / "window.parquet"
    pd.DataFrame({"a": np.arange(10_000), "b": np.arange(10_000) * 2.0, "c": 1}).to_parquet(path)
    first = read_sample(path, ["a", "b"], 500, seed=3)
    again = read_sample(path, ["a", "b"], 500, seed=3)
    other = read_sample(path, ["a", "b"], 500, seed=4)
    assert list(first.columns) == ["a", "b"]
    assert len(first) == 500
    assert first["a"].is_unique
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert len(read_sample(path, ["a"], 20_000, seed=3)) == 10_000  # small windows: all rows
