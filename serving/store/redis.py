"""Redis online store: shared by every replica of the service.

Per customer a sorted set of `txid:amount` by time; per terminal a sorted set of txids by
time; a hash txid -> terminal (idempotence and label matching) and a hash of fraud labels.
One Lua script adds a batch and reads its windows atomically, in one round trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipelines.materialize import EVENTS
from serving.store import Event, History, Spans

PREFIX = "fraudops"
SCRIPTS = Path(__file__).parent


def _args(events: list[Event]) -> list[Any]:
    flat: list[Any] = []
    for e in events:
        flat += [
            e.transaction_id,
            e.customer_id,
            e.terminal_id,
            e.ts_us,
            repr(float(e.amount)),
            int(e.fraud),
        ]
    return flat


class RedisStore:
    """Events in sorted sets; every operation is one atomic script call."""

    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        import redis

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
        rows = [Event(*r.values()) for r in pq.read_table(events).to_pylist()]
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            self._add_and_read(args=[self._p, len(part), 0, 0, 0, 0, *_args(part)])  # no pruning
        self._r.set(f"{self._p}:seed", marker)
        return len(rows)

    def add_and_read(self, events: list[Event], spans: Spans) -> list[History]:
        raw = self._add_and_read(
            args=[
                self._p,
                len(events),
                1,
                spans.customer_us,
                spans.terminal_from_us,
                spans.terminal_to_us,
                *_args(events),
            ]
        )
        out = []
        for c, t, f in raw:
            members, c_scores = c[0::2], c[1::2]
            amounts = [float(m.rsplit(b":", 1)[1]) for m in members]
            out.append(
                History(
                    np.array([int(float(s)) for s in c_scores], dtype=np.int64),
                    np.array(amounts, dtype=np.float64),
                    np.array([int(float(s)) for s in t[1::2]], dtype=np.int64),
                    np.array([int(x) for x in f], dtype=np.int64),
                )
            )
        return out

    def label(self, labels: list[tuple[int, int]]) -> tuple[int, int]:
        flat = [x for pair in labels for x in pair]
        matched = int(self._label(args=[self._p, *flat]))
        return matched, len(labels) - matched

    def close(self) -> None:
        self._r.close()
