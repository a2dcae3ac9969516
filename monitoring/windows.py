"""Windows of data to compare, read as seeded samples straight from parquet.

Only the sampled rows are ever converted to pandas: a 1,000,000-row window costs its
Arrow columns plus `rows` rows, not a full DataFrame copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq


def read_sample(path: Path, columns: list[str], rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` rows of `columns`, drawn without replacement with a seeded generator."""
    table = pq.read_table(path, columns=columns)
    if table.num_rows > rows:
        picks = np.sort(np.random.default_rng(seed).choice(table.num_rows, rows, replace=False))
        table = table.take(picks)
    frame: pd.DataFrame = table.to_pandas()
    return frame
