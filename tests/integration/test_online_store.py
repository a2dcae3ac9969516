"""One suite, both online store backends: SQLite (embedded) and a real Redis server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.features import DAY_US
from pipelines.materialize import EVENTS
from serving.store import Event, Spans, Store, open_store

pytestmark = pytest.mark.integration

SPANS = Spans(customer_us=30 * DAY_US, terminal_from_us=37 * DAY_US, terminal_to_us=7 * DAY_US)
T0 = 1_525_000_000 * 1_000_000


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    s = open_store(request.param, tmp_path / "online.db", url)
    if request.param == "redis":
        import redis

        redis.Redis.from_url(url).flushdb()
    yield s
    s.close()


def _event(
    tid: int, day: float, customer: int = 1, terminal: int = 2, amount: float = 10.0, fraud: int = 0
) -> Event:
    return Event(tid, customer, terminal, T0 + int(day * DAY_US), amount, fraud)


def test_reads_the_customer_window_including_itself(store: Store) -> None:
    store.add_and_read([_event(1, 0), _event(2, 10, amount=20.0)], SPANS)
    (h,) = store.add_and_read([_event(3, 31, amount=30.0)], SPANS)
    assert sorted(h.customer_amount.tolist()) == [20.0, 30.0]  # day 0 is > 30 days back


def test_adding_the_same_transaction_twice_keeps_one(store: Store) -> None:
    store.add_and_read([_event(1, 0)], SPANS)
    (h,) = store.add_and_read([_event(1, 0)], SPANS)
    assert h.customer_ts.size == 1


def test_terminal_window_is_delayed_and_labelled(store: Store) -> None:
    store.add_and_read([_event(1, 0, fraud=1), _event(2, 5), _event(3, 6.5)], SPANS)
    (h,) = store.add_and_read([_event(4, 13.9)], SPANS)
    # (t - 37d, t - 7d] = (-23.1, 6.9]: days 0, 5 and 6.5, not 13.9 itself.
    assert sorted(h.terminal_ts.tolist()) == [T0, T0 + 5 * DAY_US, T0 + int(6.5 * DAY_US)]
    assert sorted(h.terminal_fraud.tolist()) == [0, 0, 1]


def test_labels_update_and_unknown_ids_are_kept_aside(store: Store) -> None:
    store.add_and_read([_event(1, 0), _event(2, 1)], SPANS)
    assert store.label([(1, 1), (2, 0), (99, 1)]) == (2, 1)
    (h,) = store.add_and_read([_event(3, 8)], SPANS)
    assert sorted(h.terminal_fraud.tolist()) == [0, 1]
    assert store.label([(1, 0)]) == (1, 0)  # a correction
    (h,) = store.add_and_read([_event(4, 8.5)], SPANS)
    assert h.terminal_fraud.sum() == 0


def test_seed_loads_once(store: Store, tmp_path: Path) -> None:
    table = pa.table(
        {
            "transaction_id": [1, 2],
            "customer_id": [1, 1],
            "terminal_id": [2, 2],
            "ts_us": [T0, T0 + DAY_US],
            "tx_amount": [5.0, 7.0],
            "tx_fraud": [0, 1],
        }
    )
    seed = tmp_path / "seed"
    seed.mkdir()
    pq.write_table(table, seed / EVENTS)
    assert store.seed(seed) == 2
    assert store.seed(seed) == 0
    (h,) = store.add_and_read([_event(3, 9)], SPANS)
    assert h.customer_amount.tolist() == [5.0, 7.0, 10.0]
    assert h.terminal_fraud.tolist() == [0, 1]


def test_a_batch_reads_what_single_events_read(store: Store) -> None:
    history = [
        _event(i, i * 0.7, customer=i % 3, terminal=i % 4, amount=float(i), fraud=i % 2)
        for i in range(1, 40)
    ]
    store.add_and_read(history, SPANS)
    batch = [
        _event(100 + i, 28 + i * 0.3, customer=i % 3, terminal=i % 4, amount=1.0) for i in range(20)
    ]
    together = store.add_and_read(batch, SPANS)
    alone = [store.add_and_read([e], SPANS)[0] for e in batch]
    for a, b in zip(together, alone, strict=True):
        assert sorted(a.customer_ts.tolist()) == sorted(b.customer_ts.tolist())
        assert sorted(a.customer_amount.tolist()) == sorted(b.customer_amount.tolist())
        assert sorted(
            zip(a.terminal_ts.tolist(), a.terminal_fraud.tolist(), strict=True)
        ) == sorted(zip(b.terminal_ts.tolist(), b.terminal_fraud.tolist(), strict=True))
