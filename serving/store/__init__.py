"""The online store: recent customer and terminal events the service computes features from.

Two backends behind one interface: SQLite (embedded default, one file shared by the
workers of one machine) and Redis (shared by replicas). `add` is idempotent by
transaction id, so scoring the same transaction twice never counts it twice. A store
answers with window aggregates (counts and sums), not with the events themselves: that is
all the features need, and far less to move.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import FraudOpsError


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

    def take(self, rows: NDArray[np.intp]) -> Events:
        """The events at positions `rows`, in that order."""
        return Events(
            self.transaction_id[rows],
            self.customer_id[rows],
            self.terminal_id[rows],
            self.ts_us[rows],
            self.amount[rows],
            self.fraud[rows],
        )

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
    # The window in which the entity's previous transaction is looked for ((cap, 1): at
    # most cap back, strictly before t), when a days-since-previous feature is on.
    customer_previous: tuple[int, int] | None = None
    terminal_previous: tuple[int, int] | None = None

    @property
    def customer_reach_us(self) -> int:
        """How far back the customer windows reach."""
        return max((lo for lo, _ in self.customer_read), default=0)

    @property
    def terminal_reach_us(self) -> int:
        """How far back the terminal windows reach."""
        return max((lo for lo, _ in self.terminal_read), default=0)

    @property
    def customer_read(self) -> tuple[tuple[int, int], ...]:
        """Every range of a customer's events a transaction needs (windows, previous)."""
        return self.customer + ((self.customer_previous,) if self.customer_previous else ())

    @property
    def terminal_read(self) -> tuple[tuple[int, int], ...]:
        """Every range of a terminal's events a transaction needs (windows, previous)."""
        return self.terminal + ((self.terminal_previous,) if self.terminal_previous else ())


NO_PREVIOUS = np.iinfo(np.int64).min  # `Aggregates.*_previous` when there is none


@dataclass(frozen=True)
class Aggregates:
    """Per event (rows) and window (columns): counts and sums of the events inside."""

    customer_count: NDArray[np.int64]
    customer_amount: NDArray[np.float64]  # sum of the amounts
    terminal_count: NDArray[np.int64]
    terminal_fraud: NDArray[np.int64]  # how many are labelled fraud
    # Per event, the time of the entity's latest event in its `Windows.*_previous` window
    # (`NO_PREVIOUS`: none); None when that window is not configured.
    customer_previous: NDArray[np.int64] | None = None
    terminal_previous: NDArray[np.int64] | None = None


@dataclass(frozen=True)
class Answers:
    """What the service answered for some transactions: score, decision, version."""

    probability: NDArray[np.float64]
    is_fraud: NDArray[np.bool_]
    version: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.probability)


# `Store.score` calls this with the positions (into its `events`) of the transactions to
# score now and their window aggregates (row i of `agg` is position rows[i]); it returns
# their answers, in that order, once their capture is durable. When it raises, the store
# keeps no answer for them.
Fresh = Callable[[NDArray[np.intp], Aggregates], Answers]


@dataclass(frozen=True)
class Outcome:
    """The answers of every transaction of a `Store.score` call, in request order;
    `replayed[i]`: transaction i was answered before, and this is that first answer."""

    answers: Answers
    replayed: NDArray[np.bool_]


class ConflictError(FraudOpsError):
    """A transaction id the store knows, sent with a different payload (HTTP 409)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        shown = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
        super().__init__(
            f"transaction_id {shown}: already scored with a different payload "
            "(a retry must resend the same transaction)"
        )


class TooFarAheadError(FraudOpsError):
    """Transactions dated beyond the newest one seen plus the allowed skew (HTTP 422)."""

    def __init__(self, ids: list[int], limit_us: int) -> None:
        self.ids, self.limit_us = ids, limit_us
        super().__init__(f"transaction_id {ids[0]}: dated beyond the newest seen + skew")


class StoreUnavailableError(FraudOpsError):
    """The online store cannot be used now (HTTP 503 with Retry-After; /ready is red)."""


class StoreNotSeededError(StoreUnavailableError):
    """The store lost its seed (a Redis restarted empty): it is being re-seeded."""


def now_us() -> int:
    """The current time in microseconds since the epoch (the skew limit's other reference)."""
    return time.time_ns() // 1000


class Store(Protocol):
    """What the scoring service needs from an online store."""

    # Its calls wait on the network: the service makes them from its thread pool, never
    # on the event loop. A local store (False) is called on the event loop.
    remote: bool

    def seed(self, seed_dir: Path) -> int:
        """Load materialised events once per seed (a no-op when already loaded)."""
        ...

    def add_and_read(self, events: Events) -> Aggregates:
        """Add `events` (ignoring known ids), then aggregate each one's windows.

        Every event of the call is added before any window is read, so events of the same
        call count for each other exactly as the offline features would count them.
        """
        ...

    def score(self, events: Events, fresh: Fresh, max_ahead_us: int | None) -> Outcome:
        """Answer `events` (unique ids), idempotently by transaction id.

        1. A known id with a different payload (customer, terminal, time, amount): raise
           `ConflictError` naming every such id; nothing is written.
        2. With `max_ahead_us`, an unknown event dated after `reference + max_ahead_us`,
           the reference being the later of the newest event the store holds and the
           current time (`now_us()`): raise `TooFarAheadError`; nothing is written. The
           current time keeps a store whose traffic paused for longer than the limit from
           refusing everything after the pause.
        3. Add the unknown events, all before any window is read (as `add_and_read`).
        4. The unknown events and the known ones without an answer (seeded, or a first
           attempt that never finished) are scored now: `fresh(rows, aggregates)`.
        5. Keep their answers; a known event with an answer gets that answer back
           (`replayed`) and changes nothing.
        No call may remove an event because another event is dated far ahead of it.
        Raises `StoreUnavailableError` when the store cannot be reached or lost its seed.
        """
        ...

    def check(self) -> str | None:
        """None when the store can serve now, else the reason (shown by /ready)."""
        ...

    def label(self, labels: list[tuple[int, int]]) -> tuple[int, int]:
        """Set fraud labels by transaction id; return (matched, kept aside as unknown)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_store(
    backend: str,
    sqlite_path: Path,
    redis_url: str | None,
    windows: Windows,
    timeout_s: float = 1.0,
) -> Store:
    """The configured backend, computing aggregates over `windows`; `timeout_s` bounds each
    network wait (Redis)."""
    if backend == "redis":
        from serving.store.redis import RedisStore

        assert redis_url is not None
        return RedisStore(redis_url, windows, timeout_s=timeout_s)
    from serving.store.sqlite import SQLiteStore

    return SQLiteStore(sqlite_path, windows)
