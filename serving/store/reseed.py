"""Re-seeding a Redis that lost its seed, in the background of the store that noticed.

One thread per process at most (`start` is a no-op while one runs); across replicas a lock
key (`SET NX EX`, redis-py's `Lock`) lets one seed while the others keep answering 503
until the seed marker is back. A re-seed that fails (Redis down again) is tried again
every `RETRY_S` until the marker is back or the store closes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import redis

LOCK_S = 30  # a seeder that died frees the lock after this; a live one renews it per chunk
RETRY_S = 0.5
log = logging.getLogger(__name__)

# (seed_dir, chunk, still_mine) -> events loaded; sets the marker when done.
Load = Callable[[Path, int, Callable[[], object]], int]


class Reseeder:
    """Runs `load` in a thread, holding the lock key, until the seed marker exists."""

    def __init__(self, r: redis.Redis, prefix: str, marker: str, load: Load) -> None:
        self._r, self._marker, self._load = r, marker, load
        self._lock_key = f"{prefix}:seeding"
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        """Whether this process is re-seeding (or waiting for another replica to)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, seed_dir: Path | None) -> None:
        """Re-seed from `seed_dir` unless this process already is."""
        if seed_dir is None:
            return
        with self._guard:
            if self.running or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, args=(seed_dir,), name="fraudops-reseed", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop at the next chunk (an unfinished re-seed leaves no marker: it reruns)."""
        self._stop.set()
        with self._guard:
            thread = self._thread
        if thread is not None:
            thread.join(LOCK_S)

    def _run(self, seed_dir: Path) -> None:
        while not self._stop.is_set():
            try:
                if self._r.exists(self._marker) or self._seed_holding_the_lock(seed_dir):
                    return
            except redis.RedisError as exc:
                log.warning("re-seeding the online store: %s; trying again", exc)
            except Exception:  # an unreadable seed file, ...: loud, and tried again
                log.exception("re-seeding the online store failed; trying again")
            self._stop.wait(RETRY_S)

    def _seed_holding_the_lock(self, seed_dir: Path) -> bool:
        """Seed if no other replica is seeding; whether this one did."""
        lock = self._r.lock(self._lock_key, timeout=LOCK_S, blocking=False)
        if not lock.acquire():
            return False  # another replica seeds: wait for its marker
        try:
            if self._r.exists(self._marker):
                return True  # seeded by the replica that held the lock just before
            log.warning("the online store lost its seed: re-seeding from %s", seed_dir)

            def still_mine() -> object:
                if self._stop.is_set():
                    raise redis.RedisError("store closed while re-seeding")
                return lock.reacquire()

            loaded = self._load(seed_dir, 2000, still_mine)
            log.warning("the online store is re-seeded: %d events", loaded)
            return True
        finally:
            with contextlib.suppress(redis.RedisError):  # expired or Redis gone: it expires
                lock.release()
