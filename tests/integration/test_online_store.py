"""One suite, both online store backends: SQLite (embedded) and a real Redis server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from numpy.typing import NDArray

from pipelines.schema import DAY_US, EVENTS
from serving.store import (
    NO_PREVIOUS,
    Aggregates,
    Answers,
    ConflictError,
    Event,
    Events,
    Outcome,
    Store,
    StoreNotSeededError,
    TooFarAheadError,
    Windows,
    open_store,
)
from serving.store import timelines as tl
from serving.store.sqlite import SQLiteStore

pytestmark = pytest.mark.integration

# Customer windows of 1, 7 and 30 days; terminal windows of 1, 7 and 30 days, 7 days delayed.
WINDOWS = Windows(
    customer=((DAY_US, 0), (7 * DAY_US, 0), (30 * DAY_US, 0)),
    terminal=((8 * DAY_US, 7 * DAY_US), (14 * DAY_US, 7 * DAY_US), (37 * DAY_US, 7 * DAY_US)),
)
T0 = 1_525_000_000 * 1_000_000


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    if request.param == "redis":
        import redis

        redis.Redis.from_url(url).flushdb()
    s = open_store(request.param, tmp_path / "online.db", url, WINDOWS)
    yield s
    s.close()


def _event(
    tid: int, day: float, customer: int = 1, terminal: int = 2, amount: float = 10.0, fraud: int = 0
) -> Event:
    return Event(tid, customer, terminal, T0 + round(day * DAY_US), amount, fraud)


def _add(store: Store, events: list[Event]) -> Aggregates:
    return store.add_and_read(Events.of(events))


def _one(agg: Aggregates, i: int = 0) -> tuple[list[int], list[float], list[int], list[int]]:
    """Event i's (customer counts, customer sums, terminal counts, terminal frauds)."""
    return (
        agg.customer_count[i].tolist(),
        agg.customer_amount[i].tolist(),
        agg.terminal_count[i].tolist(),
        agg.terminal_fraud[i].tolist(),
    )


def test_customer_windows_include_the_transaction_itself(store: Store) -> None:
    _add(store, [_event(1, 0), _event(2, 10, amount=20.0)])
    counts, sums, _, _ = _one(_add(store, [_event(3, 31, amount=30.0)]))
    assert counts == [1, 1, 2]  # day 0 is more than 30 days back
    assert sums == [30.0, 30.0, 50.0]


def test_edges_are_exact_and_ties_count_in_full(store: Store) -> None:
    t = 40.0
    _add(
        store,
        [
            _event(1, t - 1, amount=1.0),  # exactly one day back: outside the 1-day window
            Event(2, 1, 2, T0 + round((t - 1) * DAY_US) + 1, 2.0),  # one microsecond later: in
            _event(3, t, amount=4.0),  # a tie with the transaction scored next
        ],
    )
    counts, sums, _, _ = _one(_add(store, [_event(4, t, amount=8.0)]))
    assert counts == [3, 4, 4]
    assert sums == [14.0, 15.0, 15.0]


def test_unknown_customer_and_terminal_get_empty_windows(store: Store) -> None:
    counts, sums, t_counts, frauds = _one(_add(store, [_event(1, 0, 77, 88, 5.0)]))
    assert counts == [1, 1, 1]
    assert sums == [5.0, 5.0, 5.0]
    assert t_counts == [0, 0, 0]
    assert frauds == [0, 0, 0]


def test_adding_the_same_transaction_twice_keeps_one(store: Store) -> None:
    _add(store, [_event(1, 0)])
    assert _one(_add(store, [_event(1, 0)]))[0] == [1, 1, 1]
    assert _one(_add(store, [_event(1, 0), _event(1, 0)]), 1)[0] == [1, 1, 1]


def test_events_of_one_call_count_for_each_other_as_offline(store: Store) -> None:
    agg = _add(
        store, [_event(1, 5.5, amount=1.0), _event(2, 5.0, amount=2.0), _event(3, 5.5, amount=4.0)]
    )
    # Each sees the events up to its own time, whatever their order in the call.
    assert agg.customer_count[:, 0].tolist() == [3, 1, 3]
    assert agg.customer_amount[:, 0].tolist() == [7.0, 2.0, 7.0]


def test_terminal_window_is_delayed_and_labelled(store: Store) -> None:
    _add(store, [_event(1, 0, fraud=1), _event(2, 5), _event(3, 6.5)])
    _, _, t_counts, frauds = _one(_add(store, [_event(4, 13.9)]))
    # (t - 8d, t - 7d] = (5.9, 6.9]; (t - 14d, ...] = (-0.1, 6.9]; 13.9 itself never counts.
    assert t_counts == [1, 3, 3]
    assert frauds == [0, 1, 1]


def test_labels_update_and_unknown_ids_are_kept_aside(store: Store) -> None:
    _add(store, [_event(1, 0), _event(2, 1)])
    assert store.label([(1, 1), (2, 0), (99, 1)]) == (2, 1)
    assert _one(_add(store, [_event(3, 8)]))[3] == [0, 1, 1]  # (0, 1] has day 1 only
    assert store.label([(1, 0)]) == (1, 0)  # a correction
    assert _one(_add(store, [_event(4, 8.5)]))[3] == [0, 0, 0]


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
    counts, sums, t_counts, frauds = _one(_add(store, [_event(3, 9)]))
    assert counts[2] == 3
    assert sums[2] == 22.0
    assert t_counts == [0, 2, 2]
    assert frauds == [0, 1, 1]


def test_a_batch_reads_what_single_events_read(store: Store) -> None:
    rng = np.random.default_rng(0)
    history = [
        _event(i, i * 0.7, customer=i % 3, terminal=i % 4, amount=float(i), fraud=i % 2)
        for i in range(1, 80)
    ]
    _add(store, history)
    batch = [
        _event(100 + i, float(rng.uniform(20, 60)), customer=i % 5, terminal=i % 6, amount=1.0)
        for i in range(40)
    ]
    _add(store, batch)  # every event known: both reads below see the same events
    together = _add(store, batch)
    for i, e in enumerate(batch):
        assert _one(together, i) == _one(_add(store, [e]))


def test_sqlite_reads_very_late_transactions_exactly(tmp_path: Path) -> None:
    """Windows reaching before what a timeline keeps are read from the events table."""
    store = open_store("sqlite", tmp_path / "online.db", None, WINDOWS)
    try:
        _add(store, [_event(1, 5, amount=3.0), _event(2, 200)])  # keeps (140, 200]
        counts, sums, t_counts, _ = _one(_add(store, [_event(3, 20, amount=4.0)]))
        assert counts == [1, 1, 2]
        assert sums == [4.0, 4.0, 7.0]
        assert t_counts == [0, 0, 1]
    finally:
        store.close()


def test_sqlite_builds_timelines_for_a_file_written_without_them(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "online.db"
    open_store("sqlite", path, None, WINDOWS).close()
    with sqlite3.connect(path) as db:  # events only, as an older version of the service left them
        db.execute("INSERT INTO events VALUES (1, 1, 2, ?, 6.0, 1)", (T0,))
        db.execute("DELETE FROM meta WHERE key = 'timelines'")
    store = open_store("sqlite", path, None, WINDOWS)
    try:
        counts, sums, t_counts, frauds = _one(_add(store, [_event(2, 10)]))
        assert counts[2] == 2
        assert sums[2] == 16.0
        assert t_counts == [0, 1, 1]
        assert frauds == [0, 1, 1]
    finally:
        store.close()


def test_sqlite_timelines_written_out_of_order_read_the_same_before_and_after_compaction(
    tmp_path: Path,
) -> None:
    import sqlite3

    store = open_store("sqlite", tmp_path / "online.db", None, WINDOWS)
    try:
        days = [3.0, 1.0, 2.5, 0.5, 2.5, 70.0, 69.5]  # appended in this order: not sorted
        for i, day in enumerate(days):
            _add(store, [_event(i + 1, day, amount=float(i + 1))])
        # More events than the few read from the events table: read from timelines.
        probe = [_event(100 + k, 70.2 + 0.1 * k, amount=1.0) for k in range(12)]
        before = _add(store, probe)
        store._compact()  # type: ignore[attr-defined]  # what the background thread does
        after = _add(store, probe)
        for i in range(len(probe)):
            assert _one(before, i) == _one(after, i)
        assert _one(after, 0)[0] == [3, 3, 3]  # 69.5, 70 and itself
        assert _one(after, 11)[0][2] == 14  # 69.5, 70 and the 12 of the probe
        with sqlite3.connect(tmp_path / "online.db") as db:
            (ts,) = db.execute("SELECT ts FROM customer_timeline WHERE id = 1").fetchone()
        assert len(ts) == 8 * 14  # the first days are pruned: older than 71.3 - 60 days
    finally:
        store.close()


def test_sqlite_compaction_never_overwrites_a_timeline_changed_meanwhile(tmp_path: Path) -> None:
    import sqlite3

    from serving.store import timelines as tl

    store = open_store("sqlite", tmp_path / "online.db", None, WINDOWS)
    try:
        for i, day in enumerate([3.0, 1.0, 2.0]):  # out of order: stale
            _add(store, [_event(i + 1, day, amount=1.0)])
        db = store._db  # type: ignore[attr-defined]
        prepared = tl.compacted(db, tl.CUSTOMERS, [1], 10**15)  # read while unchanged...
        _add(store, [_event(9, 2.5, amount=1.0)])  # ... then a request appends to it
        store._write(lambda: tl.replace(db, tl.CUSTOMERS, prepared))  # type: ignore[attr-defined]
        with sqlite3.connect(tmp_path / "online.db") as raw:
            (ts,) = raw.execute("SELECT ts FROM customer_timeline WHERE id = 1").fetchone()
        assert len(ts) == 8 * 4  # the append survived; the row waits for the next round
        store._stale[tl.CUSTOMERS].add(1)  # type: ignore[attr-defined]  # as a reader marks it
        store._compact()  # type: ignore[attr-defined]
        with sqlite3.connect(tmp_path / "online.db") as raw:
            ts, ok = raw.execute("SELECT ts, sorted FROM customer_timeline WHERE id = 1").fetchone()
        assert len(ts) == 8 * 4
        assert ok == 1
    finally:
        store.close()


def _oracle(history: list[Event], e: Event) -> tuple[list[int], list[float], list[int], list[int]]:
    """Every window of `e` by brute force over `history` (which includes `e`)."""
    out: tuple[list[int], list[float], list[int], list[int]] = ([], [], [], [])
    for lo, hi in WINDOWS.customer:
        inside = [h for h in history if h.customer_id == e.customer_id]
        inside = [h for h in inside if e.ts_us - lo < h.ts_us <= e.ts_us - hi]
        out[0].append(len(inside))
        out[1].append(sum(h.amount for h in inside))
    for lo, hi in WINDOWS.terminal:
        inside = [h for h in history if h.terminal_id == e.terminal_id]
        inside = [h for h in inside if e.ts_us - lo < h.ts_us <= e.ts_us - hi]
        out[2].append(len(inside))
        out[3].append(sum(h.fraud for h in inside))
    return out


def test_batches_mixing_late_and_recent_transactions_are_exact(store: Store) -> None:
    rng = np.random.default_rng(3)
    history = [
        _event(i, float(d), customer=int(c), terminal=int(k), amount=float(a), fraud=int(f))
        for i, (d, c, k, a, f) in enumerate(
            zip(
                rng.uniform(0, 200, 400),
                rng.integers(0, 6, 400),
                rng.integers(0, 4, 400),
                rng.uniform(1, 100, 400).round(2),
                rng.random(400) < 0.2,
                strict=True,
            )
        )
    ]
    for start in range(0, len(history), 50):
        _add(store, history[start : start + 50])
    # Both keep two reaches; SQLite reads older windows from its events table, so it is
    # exact for any day; Redis is exact up to one reach (30 days) before the newest event.
    late = (
        [20.25, 45.5, 59.75, 12.0, 30.0]
        if type(store).__name__ == "SQLiteStore"
        else [180.25, 175.5, 190.75, 172.0, 171.0]
    )
    days = [199.5, late[0], 198.0, late[1], late[2], 196.0, late[3], 199.9, late[4], 197.5]
    batch = [
        _event(1000 + j, d, customer=j % 6, terminal=j % 4, amount=5.0) for j, d in enumerate(days)
    ]
    got = _add(store, batch)
    everything = history + batch
    for j, e in enumerate(batch):
        counts, sums, t_counts, frauds = _one(got, j)
        want = _oracle(everything, e)
        assert counts == want[0], (j, e)
        assert sums == pytest.approx(want[1], abs=1e-9), (j, e)
        assert (t_counts, frauds) == (want[2], want[3]), (j, e)


def test_sqlite_real_time_traffic_alone_gets_its_timelines_compacted(tmp_path: Path) -> None:
    """One transaction at a time never reads a timeline whole; its appends report the rows
    that grew past what they keep, and compaction prunes (and sorts) them."""
    import sqlite3

    from serving.store import timelines as tl

    store = open_store("sqlite", tmp_path / "online.db", None, WINDOWS)
    try:
        for i, day in enumerate([5.0, 3.0, 150.0]):  # out of order; then two reaches later
            _add(store, [_event(i + 1, day, amount=1.0)])
        assert 1 in store._stale[tl.CUSTOMERS]  # type: ignore[attr-defined]
        store._compact()  # type: ignore[attr-defined]  # what the background thread does
        with sqlite3.connect(tmp_path / "online.db") as raw:
            ts, in_order = raw.execute(
                "SELECT ts, sorted FROM customer_timeline WHERE id = 1"
            ).fetchone()
        assert in_order == 1
        assert len(ts) == 8  # days 3 and 5 pruned: more than 60 days before day 150
    finally:
        store.close()


def _open_together(path: str, barrier: Any) -> None:
    """One worker starting: it opens the store the moment the others do."""
    barrier.wait(60)
    open_store("sqlite", Path(path), None, WINDOWS).close()


def test_sqlite_workers_starting_together_all_open_a_new_store(tmp_path: Path) -> None:
    """Switching a new file into WAL mode failed at once ("database is locked") for about
    one process in three opening it together (a service's workers starting)."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    for attempt in range(8):
        path = str(tmp_path / f"online-{attempt}.db")
        barrier = spawn.Barrier(3)
        workers = [spawn.Process(target=_open_together, args=(path, barrier)) for _ in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
        assert [w.exitcode for w in workers] == [0, 0, 0], f"attempt {attempt}"


def _write_from_another_process(path: str, start: int, shared: int) -> None:
    """One worker's traffic: its own transactions one by one, and ids another worker scores too."""
    store = open_store("sqlite", Path(path), None, WINDOWS)
    try:
        for i in range(100):
            _add(store, [_event(start + i, 1 + i / 1000, customer=start)])
            _add(store, [_event(shared + i % 20, 2, customer=0)])
    finally:
        store.close()


def test_sqlite_writers_in_several_processes_count_every_event_once(tmp_path: Path) -> None:
    """Two worker processes and a thread writing the same file at once: no 'database is
    locked', no event lost or counted twice."""
    import multiprocessing
    import threading

    path = tmp_path / "online.db"
    open_store("sqlite", path, None, WINDOWS).close()  # schema first, as the service does
    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(target=_write_from_another_process, args=(str(path), start, 9_000))
        for start in (1_000, 2_000)
    ]
    for w in workers:
        w.start()
    here = open_store("sqlite", path, None, WINDOWS)
    try:
        writer = threading.Thread(
            target=_write_from_another_process, args=(str(path), 3_000, 9_000)
        )
        writer.start()
        writer.join(120)
        for w in workers:
            w.join(120)
            assert w.exitcode == 0
        # Each writer's 100 own transactions, and the 20 shared ones once.
        for customer in (1_000, 2_000, 3_000):
            assert _one(_add(here, [_event(99_000 + customer, 1.5, customer=customer)]))[0] == [
                101,
                101,
                101,
            ]
        assert _one(_add(here, [_event(99_999, 2, customer=0)]))[0] == [21, 21, 21]
    finally:
        here.close()


class _Reversed:
    """A connection whose queries answer in reverse order (SQLite never does for timelines,
    whose reader relies on it only after checking)."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def execute(self, sql: str, params: Any = ()) -> Any:
        rows = self._db.execute(sql, params).fetchall()
        return _Rows(rows[::-1])


class _Rows:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def fetchall(self) -> list[Any]:
        return list(self._rows)


def test_timelines_come_back_in_the_order_asked_whatever_sqlite_returns(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "online.db", WINDOWS)
    try:
        _add(store, [_event(i, i / 10, customer=i % 7) for i in range(1, 50)])
        ids = np.array([5, 0, 3, 99, 1], dtype=np.int64)  # 99: no events
        keep = 60 * DAY_US
        direct = tl.read(store._db, tl.CUSTOMERS, ids, keep)
        reversed_ = tl.read(_Reversed(store._db), tl.CUSTOMERS, ids, keep)
    finally:
        store.close()
    assert direct.timelines.lengths.tolist() == [7, 7, 7, 0, 7]
    for got in (direct, reversed_):
        assert got.timelines.lengths.tolist() == direct.timelines.lengths.tolist()
        assert got.timelines.ts.tolist() == direct.timelines.ts.tolist()
        assert got.since.tolist() == direct.since.tolist()


# --- Store.score: the contract (serving/store/__init__.py), on both backends ---------------


class _Fresh:
    """The caller's part, faked: a score from the customer's 30-day count, a fixed version;
    remembers what it was asked to score."""

    def __init__(self, version: int = 1, fail: bool = False) -> None:
        self.version, self.fail = version, fail
        self.asked: list[list[int]] = []
        self.aggregates: list[Aggregates] = []

    def __call__(self, rows: NDArray[np.intp], agg: Aggregates) -> Answers:
        self.asked.append(rows.tolist())
        self.aggregates.append(agg)
        if self.fail:
            raise RuntimeError("the model failed")
        p = agg.customer_count[:, -1] / 100 + self.version / 1000
        return Answers(p.astype(np.float64), p >= 0.03, np.full(len(rows), self.version))

    @property
    def rows(self) -> list[int]:
        """Every position it scored, over all its calls."""
        return [r for rows in self.asked for r in rows]


@pytest.fixture
def scoring(store: Store) -> Store:
    if not hasattr(store, "score"):
        pytest.skip(f"{type(store).__name__}.score is not implemented on this branch")
    return store


def _score(
    store: Store, events: list[Event], fresh: _Fresh, max_ahead_us: int | None = None
) -> Outcome:
    return store.score(Events.of(events), fresh, max_ahead_us)


def _seed(store: Store, folder: Path, events: list[Event]) -> int:
    columns = Events.of(events)
    folder.mkdir(exist_ok=True)
    table = pa.table(
        {
            "transaction_id": columns.transaction_id,
            "customer_id": columns.customer_id,
            "terminal_id": columns.terminal_id,
            "ts_us": columns.ts_us,
            "tx_amount": columns.amount,
            "tx_fraud": columns.fraud,
        }
    )
    pq.write_table(table, folder / EVENTS)
    return store.seed(folder)


def test_score_answers_new_events_after_adding_them_all(scoring: Store) -> None:
    fresh = _Fresh()
    batch = [_event(1, 5.5, amount=1.0), _event(2, 5.0, amount=2.0), _event(3, 5.5, amount=4.0)]
    out = _score(scoring, batch, fresh)
    assert fresh.asked == [[0, 1, 2]]
    (agg,) = fresh.aggregates
    assert agg.customer_count[:, 0].tolist() == [3, 1, 3]  # as add_and_read counts them
    assert agg.customer_amount[:, 0].tolist() == [7.0, 2.0, 7.0]
    assert out.replayed.tolist() == [False, False, False]
    assert out.answers.probability.tolist() == pytest.approx([0.031, 0.011, 0.031])
    assert out.answers.is_fraud.tolist() == [True, False, True]
    assert out.answers.version.tolist() == [1, 1, 1]


def test_a_replay_returns_the_first_answer_and_changes_no_window(scoring: Store) -> None:
    first = _score(scoring, [_event(1, 0), _event(2, 1)], _Fresh(version=1))
    later = _Fresh(version=2)  # a new model meanwhile: a replay still gets the first answer
    for _ in range(3):
        again = _score(scoring, [_event(2, 1), _event(1, 0)], later)
        assert again.replayed.tolist() == [True, True]
        assert again.answers.probability.tolist() == first.answers.probability[::-1].tolist()
        assert again.answers.version.tolist() == [1, 1]
    mixed = _score(scoring, [_event(1, 0), _event(3, 2)], later)
    assert mixed.replayed.tolist() == [True, False]
    assert later.rows == [1]  # only the new one was scored
    assert later.aggregates[-1].customer_count[0].tolist() == [1, 3, 3]  # each event once


def test_a_known_id_with_another_payload_is_a_conflict_and_writes_nothing(
    scoring: Store,
) -> None:
    _score(scoring, [_event(1, 0, amount=10.0)], _Fresh())
    changed = [
        _event(1, 0, customer=9),
        _event(1, 0, terminal=9),
        Event(1, 1, 2, T0 + 1, 10.0),
        _event(1, 0, amount=float(np.nextafter(10.0, 11.0))),  # the exact amount counts
    ]
    for event in changed:
        fresh = _Fresh()
        with pytest.raises(ConflictError) as caught:
            _score(scoring, [_event(5, 0.5), event, _event(6, 0.5)], fresh)
        assert caught.value.ids == [1]
        assert fresh.asked == []
    probe = _Fresh()
    _score(scoring, [_event(7, 0.6)], probe)
    assert probe.aggregates[0].customer_count[0].tolist() == [2, 2, 2]  # 5 and 6 never added


def _clock(monkeypatch: pytest.MonkeyPatch, us: int) -> None:
    """The stores' current time, as `us`."""
    import serving.store.redis
    import serving.store.sqlite

    for module in (serving.store.sqlite, serving.store.redis):
        monkeypatch.setattr(module, "now_us", lambda: us)


def test_an_event_too_far_ahead_is_refused_and_writes_nothing(
    scoring: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clock(monkeypatch, T0)  # the clock at day 0: the newest event is the later reference
    fresh = _Fresh()
    _score(scoring, [_event(1, 500)], fresh, max_ahead_us=600 * DAY_US)
    assert _score(scoring, [_event(9, 0)], fresh, max_ahead_us=DAY_US).replayed.tolist() == [False]
    with pytest.raises(TooFarAheadError) as caught:
        _score(scoring, [_event(2, 500.5), _event(3, 501.5)], fresh, max_ahead_us=DAY_US)
    assert caught.value.ids == [3]
    assert caught.value.limit_us == T0 + 501 * DAY_US
    _score(scoring, [_event(4, 501)], fresh, max_ahead_us=DAY_US)  # at the limit: allowed
    assert fresh.aggregates[-1].customer_count[0].tolist() == [1, 2, 2]  # 1 and 4: 2 never added


def test_after_a_pause_longer_than_the_limit_the_clock_is_the_reference(
    scoring: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Traffic stopped for 30 days (limit 7): the next transactions are within 7 days of
    now, so they are taken; one dated past now + 7 days is still refused."""
    fresh = _Fresh()
    _clock(monkeypatch, T0)
    _score(scoring, [_event(1, 0)], fresh, max_ahead_us=7 * DAY_US)
    _clock(monkeypatch, T0 + 30 * DAY_US)
    _score(scoring, [_event(2, 30)], fresh, max_ahead_us=7 * DAY_US)
    with pytest.raises(TooFarAheadError):
        _score(scoring, [_event(3, 38)], fresh, max_ahead_us=7 * DAY_US)


def test_seeded_events_are_scored_when_first_asked_then_replayed(
    scoring: Store, tmp_path: Path
) -> None:
    assert _seed(scoring, tmp_path / "seed", [_event(1, 0), _event(2, 1)]) == 2
    fresh = _Fresh()
    out = _score(scoring, [_event(3, 1.5), _event(2, 1)], fresh)
    assert out.replayed.tolist() == [False, False]
    assert fresh.asked == [[0, 1]]
    assert fresh.aggregates[0].customer_count[:, 2].tolist() == [3, 2]  # the seed counted once
    assert _score(scoring, [_event(2, 1)], fresh).replayed.tolist() == [True]


def test_when_fresh_fails_no_answer_is_kept_and_a_retry_scores(scoring: Store) -> None:
    with pytest.raises(RuntimeError):
        _score(scoring, [_event(1, 0), _event(2, 0.5)], _Fresh(fail=True))
    retry = _Fresh(version=3)
    out = _score(scoring, [_event(1, 0), _event(2, 0.5)], retry)
    assert out.replayed.tolist() == [False, False]
    assert out.answers.version.tolist() == [3, 3]
    assert retry.aggregates[0].customer_count[:, 0].tolist() == [1, 2]  # added once


def test_an_event_far_ahead_but_allowed_removes_no_history_its_batch_reads(
    scoring: Store,
) -> None:
    """A transaction dated months ahead (within max_ahead) arrives with ordinary ones: the
    history those read is intact (Redis once pruned from the new event's own time)."""
    history = [_event(i, i, amount=float(i), fraud=i % 2) for i in range(1, 41)]
    _score(scoring, history, _Fresh())
    fresh = _Fresh()
    batch = [_event(100, 130), _event(101, 40.5, amount=1.0)]  # 90 days ahead: allowed below
    _score(scoring, batch, fresh, max_ahead_us=90 * DAY_US)
    want = _oracle([*history, *batch], batch[1])
    agg = fresh.aggregates[0]
    assert agg.customer_count[1].tolist() == want[0] == [2, 8, 31]
    assert agg.customer_amount[1].tolist() == pytest.approx(want[1])
    assert (agg.terminal_count[1].tolist(), agg.terminal_fraud[1].tolist()) == (want[2], want[3])


def test_redis_answers_once_first_answer_wins(store: Store) -> None:
    """Two replicas scoring one transaction at once: the answer kept first is every answer."""
    if type(store).__name__ != "RedisStore":
        pytest.skip("a race between replicas sharing one Redis")
    inner = _Fresh(version=2)

    def racing(rows: NDArray[np.intp], agg: Aggregates) -> Answers:
        other = _score(store, [_event(1, 0)], inner)  # another replica, while this one scores
        assert other.replayed.tolist() == [False]
        return _Fresh(version=1)(rows, agg)

    out = store.score(Events.of([_event(1, 0)]), racing, None)
    assert out.replayed.tolist() == [True]
    assert out.answers.version.tolist() == [2]


def test_redis_keeps_a_bounded_number_of_events_per_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays bounded by a count per customer and terminal, the oldest going first; no
    event's date decides what goes (one far ahead once erased a customer's history)."""
    if type(store).__name__ != "RedisStore":
        pytest.skip("SQLite keeps every event in its events table")
    import serving.store.redis

    monkeypatch.setattr(store, "_spec", [*store._spec[:-1], 3])  # type: ignore[attr-defined]
    r = store._r  # type: ignore[attr-defined]
    _add(store, [_event(1, 0), _event(2, 10), _event(3, 5000)])  # one dated years ahead
    assert (r.zcard("fraudops:c:1"), r.zcard("fraudops:t:2")) == (3, 3)
    _add(store, [_event(4, 11)])
    assert (r.zcard("fraudops:c:1"), r.zcard("fraudops:t:2")) == (3, 3)
    kept = [m.split(b":")[0] for m in r.zrange("fraudops:c:1", 0, -1)]
    assert kept == [b"2", b"4", b"3"]  # the oldest (day 0) went, not the history before day 5000
    assert serving.store.redis.KEEP_EVENTS >= 10_000


def _until(ok: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("seeded", [2, 0], ids=["seed-file", "no-seed-file"])
def test_redis_flushed_refuses_then_seeds_itself_again(
    store: Store, tmp_path: Path, seeded: int
) -> None:
    if type(store).__name__ != "RedisStore":
        pytest.skip("a Redis that lost its data (restarted empty, flushed)")
    history = [_event(1, 0, amount=3.0), _event(2, 1, amount=4.0)][:seeded]
    if history:
        assert _seed(store, tmp_path / "seed", history) == seeded
    else:
        (tmp_path / "seed").mkdir()
        assert store.seed(tmp_path / "seed") == 0  # nothing to seed: a marker all the same
    assert store.check() is None
    for call in (
        lambda: _score(store, [_event(3, 2)], _Fresh()),
        lambda: _add(store, [_event(3, 2)]),
    ):
        store._r.flushdb()  # type: ignore[attr-defined]
        with pytest.raises(StoreNotSeededError):
            call()
        _until(lambda: store.check() is None, "the re-seed")
    fresh = _Fresh()
    _score(store, [_event(3, 2, amount=5.0)], fresh)
    assert fresh.aggregates[0].customer_amount[0].tolist()[2] == [5.0, 12.0][bool(seeded)]


PREVIOUS = Windows(
    customer=WINDOWS.customer,
    terminal=WINDOWS.terminal,
    customer_previous=(30 * DAY_US, 1),
    terminal_previous=(2 * DAY_US, 1),
)


def _latest(events: list[Event], e: Event, window: tuple[int, int], key: str) -> int | None:
    lo, hi = window
    times = [
        o.ts_us
        for o in events
        if getattr(o, key) == getattr(e, key) and e.ts_us - lo < o.ts_us <= e.ts_us - hi
    ]
    return max(times, default=None)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_the_previous_event_is_the_latest_strictly_before_in_every_read_path(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """`Windows.*_previous`: each transaction's latest other event of its customer (of its
    terminal) strictly before it and within the cap: ties at its own time do not count; a
    batch, single events (SQLite's few-event queries) and very late transactions (its
    events table) read the same."""
    url = request.getfixturevalue("redis_url") if backend == "redis" else None
    if url:
        import redis

        redis.Redis.from_url(url).flushdb()
    store = open_store(backend, tmp_path / "online.db", url, PREVIOUS)
    try:
        rng = np.random.default_rng(5)
        days = np.round(rng.uniform(0, 120, 300), 1)  # tenths of a day: many ties
        history = [
            _event(i, float(d), customer=int(i % 7), terminal=int(i % 5))
            for i, d in enumerate(days)
        ]
        for start in range(0, len(history), 60):
            _add(store, history[start : start + 60])
        late = [10.0, 35.5] if backend == "sqlite" else []
        at = [119.5, 118.0, *late, 119.0, 100.0, 117.3, 119.95, 60.0, 119.9, 110.0, 118.7]
        batch = [_event(5000 + j, d, customer=j % 7, terminal=j % 5) for j, d in enumerate(at)]
        together = _add(store, batch)
        alone = [_add(store, [e]) for e in batch]  # all known now: the same events count
        everything = history + batch
        for j, e in enumerate(batch):
            for got in (together, alone[j]):
                assert got.customer_previous is not None
                assert got.terminal_previous is not None
                i = j if got is together else 0
                for found, window, key in (
                    (got.customer_previous[i], PREVIOUS.customer_previous, "customer_id"),
                    (got.terminal_previous[i], PREVIOUS.terminal_previous, "terminal_id"),
                ):
                    assert window is not None
                    want = _latest(everything, e, window, key)
                    assert found == (NO_PREVIOUS if want is None else want), (j, key)
        assert (
            _add(store, [_event(9999, 119.99, customer=99, terminal=99)]).customer_previous[0]
            == NO_PREVIOUS
        )  # type: ignore[index]
    finally:
        store.close()
