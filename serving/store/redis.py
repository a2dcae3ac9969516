"""Redis online store: shared by every replica of the service.

Per customer a sorted set of `txid:amount` by time; per terminal a sorted set of txids by
time; a hash txid -> terminal (idempotence and label matching) and a hash of fraud labels.
One Lua script adds a batch and aggregates its windows atomically, in one round trip:
only counts and sums travel back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipelines.schema import EVENTS
from serving.store import Aggregates, Events, Windows

PREFIX = "fraudops"
SCRIPTS = Path(__file__).parent


def _args(rows: list[tuple[Any, ...]]) -> list[Any]:
    """Events flattened for the script; amounts as repr text (exact round trip)."""
    flat: list[Any] = []
    for tid, customer, terminal, ts, amount, fraud in rows:
        flat += [tid, customer, terminal, ts, repr(float(amount)), int(fraud)]
    return flat


class RedisStore:
    """Events in sorted sets; every operation is one atomic script call."""

    def __init__(self, url: str, windows: Windows, prefix: str = PREFIX) -> None:
        import redis

        self._windows = windows
        self._spec: list[Any] = []
        for w in (windows.customer, windows.terminal):
            self._spec += [len(w), *(x for pair in w for x in pair)]

        self._r = redis.Redis.from_url(url, socket_timeout=5)
        self._p = prefix
        self._add_and_read = self._r.register_script((SCRIPTS / "add_and_read.lua").read_text())
        self._label = self._r.register_script((SCRIPTS / "label.lua").read_text())

    def seed(self, seed_dir: Path, chunk: int = 2000) -> int:
        events = seed_dir / EVENTS
        if not events.exists():
            return 0
        marker = f"{events.stat().st_size}:{events.stat().st_mtime_ns}"
        if self._r.get(f"{self._p}:seed") == marker.encode():
            return 0
        rows = [tuple(r.values()) for r in pq.read_table(events).to_pylist()]
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            # read = 0: add only, and without pruning
            self._add_and_read(args=[self._p, len(part), 0, *self._spec, *_args(part)])
        self._r.set(f"{self._p}:seed", marker)
        return len(rows)

    def add_and_read(self, events: Events) -> Aggregates:
        args = _args(events.rows())
        raw = self._add_and_read(args=[self._p, len(events), 1, *self._spec, *args])
        kc = len(self._windows.customer)
        # Counts are integers, sums '%.17g' text: both convert to float64 exactly.
        flat = [float(x) for row in raw for x in row]
        rows = np.array(flat, dtype=np.float64).reshape(len(events), -1)
        customer, terminal = rows[:, : 2 * kc], rows[:, 2 * kc :]
        return Aggregates(
            customer[:, 0::2].astype(np.int64),
            customer[:, 1::2],
            terminal[:, 0::2].astype(np.int64),
            terminal[:, 1::2].astype(np.int64),
        )

    def label(self, labels: list[tuple[int, int]]) -> tuple[int, int]:
        flat = [x for pair in labels for x in pair]
        matched = int(self._label(args=[self._p, *flat]))
        return matched, len(labels) - matched

    def close(self) -> None:
        self._r.close()
