"""Reading and writing tables: clear errors for bad files, no partial output ever left behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataContractError

if TYPE_CHECKING:  # imported where used: the scoring service shares this module, not pandas
    import pandas as pd


def read_table(path: Path) -> pd.DataFrame:
    """Read a parquet or CSV file; any unreadable file is a `DataContractError` naming it."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        raise DataContractError(f"{path}: file not found")
    try:
        if path.suffix.lower() == ".csv":
            frame: pd.DataFrame = pd.read_csv(path, low_memory=False)
        else:
            # Timestamps keep their unit (us, ms, s): in nanoseconds, years before 1677 or
            # after 2262 would not fit, and `validate` must see them to quarantine them.
            frame = pq.read_table(path).to_pandas(coerce_temporal_nanoseconds=False)
    except (pa.ArrowException, OSError, ValueError, pd.errors.ParserError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataContractError(f"{path}: cannot read ({reason})") from None
    return frame


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp creates 0600; give outputs ordinary permissions
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write `df` to parquet atomically and deterministically (same frame, same bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 20)


def sql_path(path: Path) -> str:
    """`path` as the body of a single-quoted SQL string literal (quotes doubled)."""
    return str(path).replace("'", "''")


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write a metrics or report file atomically, keys sorted."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def remove_outputs(*paths: Path) -> None:
    """Delete stale outputs so a failed stage leaves nothing a later stage would read."""
    for path in paths:
        path.unlink(missing_ok=True)
