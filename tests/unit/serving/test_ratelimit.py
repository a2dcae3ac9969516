"""The /admin rate limit (serving/ratelimit.py): a burst, then one request per refill
interval, per client; the wait it reports; buckets kept bounded."""

from __future__ import annotations

import pytest

from serving import ratelimit
from serving.ratelimit import TokenBucket


def test_a_burst_then_429_until_a_token_is_back() -> None:
    bucket = TokenBucket(burst=3, per_s=0.5)  # one token every 2 s
    assert [bucket.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a", 100.0) == pytest.approx(2.0)
    assert bucket.take("a", 101.0) == pytest.approx(1.0)  # a refused try takes nothing
    assert bucket.take("a", 102.0) == 0.0
    assert bucket.take("b", 102.0) == 0.0  # another client has its own bucket


def test_the_bucket_refills_to_the_burst_only() -> None:
    bucket = TokenBucket(burst=2, per_s=1.0)
    bucket.take("a", 0.0)
    waits = [bucket.take("a", 1000.0) for _ in range(3)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] > 0


def test_full_buckets_are_dropped_beyond_max_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_CLIENTS", 10)
    bucket = TokenBucket(burst=1, per_s=1.0)
    for i in range(10):
        bucket.take(f"old-{i}", 0.0)
    bucket.take("new", 5.0)  # the old ones are full again by now
    assert set(bucket.buckets) == {"new"}
