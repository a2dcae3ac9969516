"""Redis online store: shared by every replica of the service.

Per customer a sorted set of `txid:amount` by time; per terminal a sorted set of txids by
time; a hash txid -> payload (idempotence, conflicts and label matching), a hash of fraud
labels, a hash txid -> first answer, the newest event time and the seed marker. Each sorted
set keeps its `KEEP_EVENTS` latest events; the hashes of ids, answers and labels are not
pruned (memory grows with the transactions scored: give Redis a `maxmemory` and watch it).
One Lua script adds a batch and aggregates its windows atomically, in one round trip: only
counts and sums travel back. `score` is two script calls: steps 1-4 of the contract, then
(after the caller scored and captured) the answers, first one kept.

Faults. Every Redis error leaves as `StoreUnavailableError` (socket and connect timeouts
are `timeout_s`; one immediate retry, on a broken connection only). A Redis that lost its
seed marker (restarted empty, flushed) is refused with `StoreNotSeededError` and re-seeded
in the background (`serving/store/reseed.py`) from the seed `seed()` loaded. That recovers
the seeded events and their labels. It does not recover what was written since the seed:
events scored since (windows undercount until those events age out of them), the answers
kept for replays (a retry of a transaction answered before the loss is scored again, and a
changed payload is no longer caught as a conflict), labels posted since, and labels kept
aside for unknown ids.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, cast

import numpy as np
import pyarrow.parquet as pq
import redis
from numpy.typing import NDArray
from redis.backoff import NoBackoff
from redis.retry import Retry

from pipelines.schema import EVENTS
from serving.store import (
    NO_PREVIOUS,
    Aggregates,
    Answers,
    ConflictError,
    Events,
    Fresh,
    Outcome,
    StoreNotSeededError,
    StoreUnavailableError,
    TooFarAheadError,
    Windows,
    now_us,
)
from serving.store.reseed import Reseeder

PREFIX = "fraudops"
SCRIPTS = Path(__file__).parent
EMPTY = b"empty"  # the seed marker when there was nothing to seed: an emptied Redis shows
CHECK_TTL_S = 0.5  # /ready may be polled often: one round trip per half second at most
RED_AFTER_FAILURE_S = 5.0  # /ready stays red this long after a failed call
# Events kept per customer and per terminal (the oldest go first): bounded memory without a
# time reference that one far-dated event could move. 100,000 is ~270 a day over the
# default reach of 37 days, for the busiest terminal; a customer is far below it.
KEEP_EVENTS = 100_000
log = logging.getLogger(__name__)


def _args(rows: list[tuple[Any, ...]]) -> list[Any]:
    """Events flattened for the script; amounts as repr text (exact round trip)."""
    flat: list[Any] = []
    for tid, customer, terminal, ts, amount, fraud in rows:
        flat += [tid, customer, terminal, ts, repr(float(amount)), int(fraud)]
    return flat


def _reason(exc: redis.RedisError) -> str:
    """A short line for 503s and /ready: the error class and its first words."""
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"redis: {type(exc).__name__}{': ' + text if text else ''}"


def _encode(probability: float, is_fraud: bool, version: int) -> str:
    return f"{float(probability)!r}:{int(is_fraud)}:{int(version)}"


def _decode(answer: bytes) -> tuple[float, bool, int]:
    probability, is_fraud, version = answer.split(b":")
    return float(probability), is_fraud == b"1", int(version)


class RedisStore:
    """Events in sorted sets; every operation is one atomic script call."""

    remote = True  # across the network: called from the thread pool, off the event loop

    def __init__(
        self, url: str, windows: Windows, prefix: str = PREFIX, timeout_s: float = 1.0
    ) -> None:
        self._windows = windows
        self._spec: list[Any] = []
        previous = (windows.customer_previous, windows.terminal_previous)
        for w in (windows.customer, windows.terminal, *((p,) if p else () for p in previous)):
            self._spec += [len(w), *(x for pair in w for x in pair)]
        self._spec.append(KEEP_EVENTS)
        # The client is thread-safe: each call takes a connection from its pool (one per
        # thread at most, so the pool is as large as the thread pool calling the store).
        # Retry once at once on a broken connection (a pooled one after a restart), never on
        # a timeout: a stuck Redis would double every wait. No health_check_interval: the
        # pool already replaces connections the server closed, and a check costs a PING.
        self._r = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        self._p = prefix
        self._marker = f"{prefix}:seed"
        prelude = (SCRIPTS / "events.lua").read_text()
        self._add_and_read = self._r.register_script(prelude + _lua("add_and_read.lua"))
        self._score = self._r.register_script(prelude + _lua("score.lua"))
        self._answer = self._r.register_script(_lua("answer.lua"))
        self._label = self._r.register_script(_lua("label.lua"))
        self._seed_dir: Path | None = None  # set by seed(): from then on the marker must exist
        self._reseeder = Reseeder(self._r, prefix, self._marker, self._load)
        self._checked = threading.Lock()
        self._error: tuple[float, str | None] = (float("-inf"), None)  # last failed call
        self._check_at, self._check_reason = -CHECK_TTL_S, cast(str | None, None)

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Redis errors (down, timed out, loading, OOM, read-only, ...) as
        StoreUnavailableError; the next check() asks Redis again rather than its cache."""
        try:
            yield
        except redis.RedisError as exc:
            self._check_at = -CHECK_TTL_S
            if not isinstance(exc, redis.ConnectionError | redis.TimeoutError):
                log.warning("online store error: %s", exc)  # a refusal, not an outage: visible
            self._error = (time.monotonic(), _reason(exc))
            raise StoreUnavailableError(_reason(exc)) from exc

    def seed(self, seed_dir: Path, chunk: int = 2000) -> int:
        with self._reachable():
            loaded = self._load(seed_dir, chunk)
        self._seed_dir = seed_dir
        return loaded

    def _load(
        self, seed_dir: Path, chunk: int = 2000, still_mine: Callable[[], object] | None = None
    ) -> int:
        """Add the seed's events unless the marker says they are in; then set the marker."""
        events = seed_dir / EVENTS
        if not events.exists():
            self._r.set(self._marker, EMPTY, nx=True)
            return 0
        marker = f"{events.stat().st_size}:{events.stat().st_mtime_ns}"
        if self._r.get(self._marker) == marker.encode():
            return 0
        rows = [tuple(r.values()) for r in pq.read_table(events).to_pylist()]
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            # read = 0: add only, and without pruning
            self._add_and_read(args=[self._p, len(part), 0, "", *self._spec, *_args(part)])
            if still_mine is not None:
                still_mine()  # a re-seed keeps its lock alive between chunks
        self._r.set(self._marker, marker)
        return len(rows)

    def add_and_read(self, events: Events) -> Aggregates:
        seeded = int(self._seed_dir is not None)
        args = [self._p, len(events), 1, seeded, *self._spec, *_args(events.rows())]
        with self._reachable():
            raw = self._add_and_read(args=args)
        if raw == b"unseeded":
            self._unseeded()
        return self._aggregates(raw)

    def _aggregates(self, raw: Sequence[Sequence[Any]]) -> Aggregates:
        w = self._windows
        kc, kt = len(w.customer), len(w.terminal)
        windowed = 2 * (kc + kt)
        # Counts are integers, sums '%.17g' text: both convert to float64 exactly.
        flat = [float(x) for row in raw for x in row[:windowed]]
        rows = np.array(flat, dtype=np.float64).reshape(len(raw), windowed)
        customer, terminal = rows[:, : 2 * kc], rows[:, 2 * kc :]
        # Then the previous events' times (as Redis writes scores; b'n': none), if configured.
        previous: list[NDArray[np.int64] | None] = []
        at = windowed
        for window in (w.customer_previous, w.terminal_previous):
            if window is None:
                previous.append(None)
                continue
            found = [row[at] for row in raw]
            times = [NO_PREVIOUS if v == b"n" else int(float(v)) for v in found]
            previous.append(np.array(times, dtype=np.int64))
            at += 1
        return Aggregates(
            customer[:, 0::2].astype(np.int64),
            customer[:, 1::2],
            terminal[:, 0::2].astype(np.int64),
            terminal[:, 1::2].astype(np.int64),
            customer_previous=previous[0],
            terminal_previous=previous[1],
        )

    def score(self, events: Events, fresh: Fresh, max_ahead_us: int | None) -> Outcome:
        n = len(events)
        skew = "" if max_ahead_us is None else f"{int(max_ahead_us)}:{now_us()}"
        seeded = int(self._seed_dir is not None)
        args = [self._p, n, skew, seeded, *self._spec, *_args(events.rows())]
        with self._reachable():
            raw = self._score(args=args)
        rows = self._refusals(raw)
        probability, version = np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.int64)
        is_fraud, replayed = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
        todo = [i for i, row in enumerate(rows) if row[0] == 1]
        for i, row in enumerate(rows):
            if row[0] == 0:
                probability[i], is_fraud[i], version[i] = _decode(row[1])
                replayed[i] = True
        if todo:
            at = np.array(todo, dtype=np.intp)
            new = fresh(at, self._aggregates([rows[i][1:] for i in todo]))
            assert len(new) == len(at), "fresh must answer every row it was given"
            probability[at], is_fraud[at], version[at] = new.probability, new.is_fraud, new.version
            for i, kept in zip(todo, self._keep(events.transaction_id[at], new), strict=True):
                mine = (probability[i], is_fraud[i], version[i])
                if kept and _decode(kept) != mine:  # answered meanwhile: that answer stands
                    probability[i], is_fraud[i], version[i] = _decode(kept)
                    replayed[i] = True  # (the same answer: our own, kept by a retried call)
        return Outcome(Answers(probability, is_fraud, version), replayed)

    def _refusals(self, raw: Any) -> list[Any]:
        """The rows of the first script's answer; its refusals as the contract's errors."""
        if raw == b"unseeded":
            self._unseeded()
        kind, *rest = raw
        if kind == b"conflict":
            raise ConflictError([int(x) for x in rest])
        if kind == b"ahead":
            raise TooFarAheadError([int(x) for x in rest[1:]], int(rest[0]))
        return list(rest)

    def _unseeded(self) -> NoReturn:
        """The script found no seed marker: re-seed (in the background) and refuse."""
        self._check_at = -CHECK_TTL_S
        self._reseeder.start(self._seed_dir)
        raise StoreNotSeededError("the online store lost its seed: re-seeding")

    def _keep(self, ids: np.ndarray[Any, Any], new: Answers) -> list[bytes]:
        """Store the answers (the first one wins); per id b'' or the answer kept before."""
        flat: list[Any] = []
        answers = zip(new.probability, new.is_fraud, new.version, strict=True)
        for tid, (p, f, v) in zip(ids.tolist(), answers, strict=True):
            flat += [tid, _encode(p, bool(f), int(v))]
        with self._reachable():
            return list(self._answer(args=[self._p, *flat]))

    def check(self) -> str | None:
        # One probe at a time: while one waits on a stuck Redis (up to timeout_s), the
        # other callers get the last result at once rather than queueing behind it.
        if time.monotonic() - self._check_at >= CHECK_TTL_S and self._checked.acquire(False):
            try:
                self._check_reason = self._probe()
                self._check_at = time.monotonic()
            finally:
                self._checked.release()
        # A call that failed lately (out of memory, read-only): red for a while, even when
        # the probe itself gets through.
        at, failed = self._error
        recent = failed if time.monotonic() - at < RED_AFTER_FAILURE_S else None
        return self._check_reason or recent

    def _probe(self) -> str | None:
        try:
            marked = bool(self._r.exists(self._marker))
        except redis.RedisError as exc:
            return _reason(exc)
        if self._seed_dir is not None and not marked:
            self._reseeder.start(self._seed_dir)
            return "the online store lost its seed: re-seeding"
        return None

    def label(self, labels: list[tuple[int, int]]) -> tuple[int, int]:
        flat = [x for pair in labels for x in pair]
        seeded = int(self._seed_dir is not None)
        with self._reachable():
            got = self._label(args=[self._p, seeded, *flat])
        if got == b"unseeded":  # labels for an emptied store would be kept aside, never used
            self._unseeded()
        matched = int(got)
        return matched, len(labels) - matched

    def close(self) -> None:
        self._reseeder.stop()
        self._r.close()


def _lua(name: str) -> str:
    return (SCRIPTS / name).read_text()
