"""The online store: recent customer and terminal events the service computes features from.

Two backends behind one interface: SQLite (embedded default, one file shared by the
workers of one machine) and Redis (shared by replicas). `add` is idempotent by
transaction id, so scoring the same transaction twice never counts it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Event:
    """One scored or seeded transaction, as the store keeps it."""

    transaction_id: int
    customer_id: int
    terminal_id: int
    ts_us: int
    amount: float
    fraud: int = 0


@dataclass(frozen=True)
class History:
    """Events of one customer and one terminal within the windows of one transaction."""

    customer_ts: NDArray[np.int64]
    customer_amount: NDArray[np.float64]
    terminal_ts: NDArray[np.int64]
    terminal_fraud: NDArray[np.int64]


@dataclass(frozen=True)
class Spans:
    """How far back the windows reach, in microseconds."""

    customer_us: int  # the longest customer window
    terminal_from_us: int  # delay + the longest terminal window
    terminal_to_us: int  # the label delay


class Store(Protocol):
    """What the scoring service needs from an online store."""

    def seed(self, seed_dir: Path) -> int:
        """Load materialised events once per seed (a no-op when already loaded)."""
        ...

    def add_and_read(self, events: list[Event], spans: Spans) -> list[History]:
        """Add `events` (ignoring known ids), then read each one's windows' history."""
        ...

    def label(self, labels: list[tuple[int, int]]) -> tuple[int, int]:
        """Set fraud labels by transaction id; return (matched, kept aside as unknown)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_store(backend: str, sqlite_path: Path, redis_url: str | None) -> Store:
    """The configured backend."""
    if backend == "redis":
        from serving.store.redis import RedisStore

        assert redis_url is not None
        return RedisStore(redis_url)
    from serving.store.sqlite import SQLiteStore

    return SQLiteStore(sqlite_path)
