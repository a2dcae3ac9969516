"""The online store: recent customer and terminal events the service computes features from.

Two backends behind one interface: SQLite (embedded default, one file shared by the
workers of one machine) and Redis (shared by replicas). `add` is idempotent by
transaction id, so scoring the same transaction twice never counts it twice. A store
answers with window aggregates (counts and sums), not with the events themselves: that is
all the features need, and far less to move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
class Events:
    """Events as columns (a request's transactions, in request order)."""

    transaction_id: NDArray[np.int64]
    customer_id: NDArray[np.int64]
    terminal_id: NDArray[np.int64]
    ts_us: NDArray[np.int64]
    amount: NDArray[np.float64]
    fraud: NDArray[np.int64]

    @classmethod
    def of(cls, events: Sequence[Event]) -> Events:
        """The columns of `events`."""

        def column(name: str, dtype: type) -> NDArray[Any]:
            return np.array([getattr(e, name) for e in events], dtype=dtype)

        return cls(
            column("transaction_id", np.int64),
            column("customer_id", np.int64),
            column("terminal_id", np.int64),
            column("ts_us", np.int64),
            column("amount", np.float64),
            column("fraud", np.int64),
        )

    def __len__(self) -> int:
        return len(self.ts_us)

    def rows(self, which: NDArray[np.bool_] | None = None) -> list[tuple[Any, ...]]:
        """(transaction_id, customer_id, terminal_id, ts_us, amount, fraud) per event."""
        columns = (
            self.transaction_id,
            self.customer_id,
            self.terminal_id,
            self.ts_us,
            self.amount,
            self.fraud,
        )
        picked = [c.tolist() if which is None else c[which].tolist() for c in columns]
        return list(zip(*picked, strict=True))


@dataclass(frozen=True)
class Windows:
    """The windows of one transaction at time t, as (lo, hi) offsets in microseconds.

    An event at `ts` is inside a window when `t - lo < ts <= t - hi`: a customer window of
    w days is (w * DAY, 0); a terminal window is ((d + w) * DAY, d * DAY) with d the label
    delay (or 1 when d = 0, so that transactions at t itself are left out, as offline).
    """

    customer: tuple[tuple[int, int], ...]
    terminal: tuple[tuple[int, int], ...]

    @property
    def customer_reach_us(self) -> int:
        """How far back the customer windows reach."""
        return max((lo for lo, _ in self.customer), default=0)

    @property
    def terminal_reach_us(self) -> int:
        """How far back the terminal windows reach."""
        return max((lo for lo, _ in self.terminal), default=0)


@dataclass(frozen=True)
class Aggregates:
    """Per event (rows) and window (columns): counts and sums of the events inside."""

    customer_count: NDArray[np.int64]
    customer_amount: NDArray[np.float64]  # sum of the amounts
    terminal_count: NDArray[np.int64]
    terminal_fraud: NDArray[np.int64]  # how many are labelled fraud


class Store(Protocol):
    """What the scoring service needs from an online store."""

    def seed(self, seed_dir: Path) -> int:
        """Load materialised events once per seed (a no-op when already loaded)."""
        ...

    def add_and_read(self, events: Events) -> Aggregates:
        """Add `events` (ignoring known ids), then aggregate each one's windows.

        Every event of the call is added before any window is read, so events of the same
        call count for each other exactly as the offline features would count them.
        """
        ...

    def label(self, labels: list[tuple[int, int]]) -> tuple[int, int]:
        """Set fraud labels by transaction id; return (matched, kept aside as unknown)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_store(backend: str, sqlite_path: Path, redis_url: str | None, windows: Windows) -> Store:
    """The configured backend, computing aggregates over `windows`."""
    if backend == "redis":
        from serving.store.redis import RedisStore

        assert redis_url is not None
        return RedisStore(redis_url, windows)
    from serving.store.sqlite import SQLiteStore

    return SQLiteStore(sqlite_path, windows)
