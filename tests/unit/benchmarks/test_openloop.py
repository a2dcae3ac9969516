"""The open-loop generator: it keeps its schedule, times each request from its due time (a
stall shows in every request it held back), and returns in bounded time whatever the server
does. Against benchmarks/responder.py, in a thread of the test process."""

from __future__ import annotations

import asyncio
import time

import pytest

from benchmarks.openloop import open_loop, percentile, read_response, request_bytes
from benchmarks.responder import Responder, responder_thread

BODY = b'{"transaction_id": 1}'


def test_it_keeps_the_schedule() -> None:
    # Correctness only, with room for a busy machine: how fast it is, is the benchmark's
    # business (the floor row of docs/benchmarks.md), not a unit test's.
    responder = Responder()
    with responder_thread(responder) as port:
        done = open_loop(f"http://127.0.0.1:{port}/v1/score", [BODY], 500, 2.0, warmup_s=0.2)
    assert (done.sent, done.ok, done.errors, done.queued) == (1000, 1000, 0, 0)
    assert done.achieved_rps == pytest.approx(500, rel=0.2)
    assert 2.2 <= done.wall_s < 6.0
    # paced, not a burst: every half second of the window got its 250 requests, give or take
    start = responder.arrivals[100]
    buckets = [0] * 4
    for t in responder.arrivals[100:]:
        buckets[min(3, int((t - start) / 0.5))] += 1
    assert all(100 <= b <= 400 for b in buckets), buckets


@pytest.mark.parametrize("connections", [1, 64])
def test_a_stall_shows_in_the_requests_it_held_back(connections: int) -> None:
    # The server blocks for 200 ms once: the ~100 requests due meanwhile are late by up to
    # 200 ms. Timed from their send, with one connection only the first would show it.
    with responder_thread(Responder(stall_at=500, stall_s=0.2)) as port:
        done = open_loop(
            f"http://127.0.0.1:{port}/", [BODY], 500, 2.0, warmup_s=0.2, connections=connections
        )
    assert (done.ok, done.errors) == (1000, 0)
    assert done.p99_ms > 100
    assert done.max_ms >= 190  # the whole stall, counted from the due time
    if connections == 1:
        assert done.queued >= 50  # held back in the generator, yet timed from their due time
    assert done.connections <= connections


def test_connections_the_server_closed_while_idle_are_not_reused() -> None:
    with responder_thread(Responder(keep_alive=False)) as port:
        done = open_loop(f"http://127.0.0.1:{port}/", [BODY], 50, 1.0, connections=4)
    assert (done.ok, done.errors) == (50, 0)
    assert done.connections == 50


def test_it_returns_in_bounded_time_when_nothing_answers() -> None:
    with responder_thread(Responder(answer=False)) as port:
        start = time.monotonic()
        done = open_loop(f"http://127.0.0.1:{port}/", [BODY], 200, 1.0, connections=8, drain_s=0.5)
        elapsed = time.monotonic() - start
    assert elapsed < 5.0
    assert (done.ok, done.errors, done.connections) == (0, 200, 8)
    assert done.queued == 200 - 8  # past the cap, counted as the schedule not kept
    assert done.achieved_rps == 0


def test_it_reads_length_and_chunked_responses_and_closes() -> None:
    async def read(raw: bytes) -> tuple[int, bool, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw + b"NEXT")
        status, keep = await read_response(reader)
        return status, keep, await reader.read(4)

    sized = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    chunked = b"HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    assert asyncio.run(read(sized)) == (200, True, b"NEXT")
    assert asyncio.run(read(chunked)) == (503, True, b"NEXT")
    assert asyncio.run(read(closing)) == (200, False, b"NEXT")


def test_requests_are_pre_encoded_whole() -> None:
    assert request_bytes("http://127.0.0.1:8000/v1/score", b"{}") == (
        b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert request_bytes("http://h:1", None) == b"GET / HTTP/1.1\r\nHost: h:1\r\n\r\n"


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 0.999)) == (
        500.0,
        990.0,
        999.0,
    )
