"""Connections at the edges: SIGTERM (and a rolling restart) under keep-alive load answers
every request it read and resets none; slow clients are cut off by the header and body
timeouts while others are served; /admin is rate limited.

Each test starts the real service (`python -m serving`) on a free 127.0.0.1 port in the
trained project of `registered_project`, bounded in requests and time, and stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.fault.load import Load, Tally, read_answer, score_request
from tests.integration.conftest import free_port
from tests.integration.test_serving_workers import TX, _env, _ready, _wait

pytestmark = pytest.mark.fault

CONNECTIONS = 64
WARM_S = 1.0  # load before the signal, once every connection has had an answer


class Service:
    """`python -m serving` with `workers` workers; `stop()` checks nothing is left behind."""

    def __init__(self, project: Path, tmp_path: Path, workers: int, **env: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving"],
            cwd=project,
            env={**_env(tmp_path, self.port, workers), **env},  # _env drops a metrics folder
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.parent = psutil.Process(self.proc.pid)
        try:
            _wait(lambda: _ready(self.url), "the service to be ready", timeout=120)
            _wait(lambda: len(self.workers()) == (0 if workers == 1 else workers), "workers")
        except BaseException:
            self.stop()
            raise

    def workers(self) -> set[int]:
        return {child.pid for child in self.parent.children()}

    def stop(self) -> int:
        try:
            children = self.parent.children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        finally:
            self.proc.kill()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"workers left behind: {alive}"
        return code


Start = Callable[..., Service]


@pytest.fixture
def start(registered_project: Path, tmp_path: Path) -> Iterator[Start]:
    """`start(workers, **env)`: a service in the trained project, stopped afterwards."""
    started: list[Service] = []

    def make(workers: int, **env: str) -> Service:
        state = tmp_path / f"service-{len(started)}"
        state.mkdir()
        started.append(Service(registered_project, state, workers, **env))
        return started[-1]

    yield make
    for service in started:
        service.stop()


async def _until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _sigterm_under_load(service: Service) -> Tally:
    load = Load(service.port, TX, CONNECTIONS, first_id=80_000_000)
    clients = asyncio.create_task(load.run())
    await _until(lambda: load.answered_once == CONNECTIONS, "every connection answered", 60)
    await asyncio.sleep(WARM_S)
    sent_before = load.tally.sent
    service.proc.send_signal(signal.SIGTERM)
    tally = await asyncio.wait_for(clients, 90)
    print(f"\nsent before SIGTERM {sent_before}; {tally}")
    return tally


@pytest.mark.parametrize(("workers", "status"), [(1, -signal.SIGTERM), (2, 0)])
def test_sigterm_under_load_answers_every_request_it_read(
    start: Start, workers: int, status: int
) -> None:
    """64 keep-alive connections score continuously; SIGTERM: no reset, no request sent on
    an accepted connection left unanswered; the service exits as a supervisor expects
    (uvicorn re-raises the signal after a clean stop; gunicorn exits 0)."""
    service = start(workers)
    tally = asyncio.run(_sigterm_under_load(service))
    assert tally.unanswered() == 0, (tally, tally.errors[:5])
    assert tally.answered > 0
    assert service.proc.wait(timeout=60) == status


async def _hup(service: Service, prom: Path) -> None:
    """gunicorn's reload: new workers forked, the old ones sent SIGTERM at once."""
    service.proc.send_signal(signal.SIGHUP)


async def _ttin_ttou(service: Service, prom: Path) -> None:
    """A roll one worker at a time: one more (TTIN); once it has loaded its model (its
    model-version gauge file), one fewer (TTOU stops the oldest)."""
    for _ in range(2):
        await _replace_the_oldest(service, prom)


async def _replace_the_oldest(service: Service, prom: Path) -> None:
    before = service.workers()
    service.proc.send_signal(signal.SIGTTIN)
    await _until(lambda: len(service.workers()) > len(before), "a third worker", 30)
    new = (service.workers() - before).pop()
    await _until(lambda: (prom / f"gauge_liveall_{new}.db").exists(), "its model", 90)
    await asyncio.sleep(1.0)  # its lifespan ends, its server starts accepting
    service.proc.send_signal(signal.SIGTTOU)
    await _until(lambda: len(service.workers()) == len(before), "the oldest to stop", 60)


async def _restart_under_load(
    service: Service, prom: Path, restart: Callable[[Service, Path], Awaitable[None]]
) -> Tally:
    old = service.workers()
    load = Load(service.port, TX, CONNECTIONS, first_id=81_000_000)
    clients = asyncio.create_task(load.run())
    await _until(lambda: load.answered_once == CONNECTIONS, "every connection answered", 60)
    await asyncio.sleep(WARM_S)
    await restart(service, prom)
    await _until(lambda: not old & service.workers(), "the old workers to stop", 90)
    answered = load.tally.answered
    await _until(lambda: load.tally.answered > answered + 200, "the new workers to answer", 90)
    load.stop()
    tally = await asyncio.wait_for(clients, 60)
    print(f"\n{restart.__name__}: {tally}")
    return tally


@pytest.mark.parametrize("restart", [_hup, _ttin_ttou])
def test_a_rolling_restart_under_load_answers_every_request(
    start: Start, tmp_path: Path, restart: Callable[[Service, Path], Awaitable[None]]
) -> None:
    """gunicorn replaces both workers under load (SIGHUP; or TTIN then TTOU, twice): the
    old ones drain, their clients are told `Connection: close` and reconnect to the new
    ones; nothing reset or lost. (SIGHUP stops the old workers before the new ones have
    loaded their model: answers wait meanwhile, `slowest_s`; TTIN/TTOU does not.)"""
    prom = tmp_path / "prometheus"
    prom.mkdir()
    service = start(2, PROMETHEUS_MULTIPROC_DIR=str(prom))
    tally = asyncio.run(_restart_under_load(service, prom, restart))
    assert tally.unanswered() == 0, (tally, tally.errors[:5])
    assert tally.fresh_reset == 0, tally  # the listening socket stayed open
    assert tally.refused == 0, tally
    assert tally.closed_by_server >= CONNECTIONS, tally
    assert len(service.workers()) == 2


HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 2.0
SLACK_S = 3.0  # a loaded 2-core machine: timers fire late, the client reads late
SLOW = {
    "FRAUDOPS_SERVING_SERVER__HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
    "FRAUDOPS_SERVING_SERVER__BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
}


async def _slowloris(port: int) -> tuple[float, bytes]:
    """A request head sent a header line every 0.5 s, never finished: seconds until the
    server closed the connection, and what it answered."""
    opened = time.monotonic()  # before the connect: the server's timer starts after it
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def trickle() -> None:
        writer.write(b"POST /v1/score HTTP/1.1\r\nHost: test\r\n")
        with contextlib.suppress(OSError):  # the server has closed: the answer is read below
            for i in range(int(4 * (HEADER_TIMEOUT_S + SLACK_S))):
                await asyncio.sleep(0.5)
                writer.write(b"X-Slow-%d: 1\r\n" % i)
                await writer.drain()

    trickling = asyncio.create_task(trickle())
    try:  # until the server closes
        answer = await asyncio.wait_for(reader.read(), HEADER_TIMEOUT_S + SLACK_S + 5)
    except ConnectionResetError:  # it closed after dropping our later lines: a reset is fine
        answer = b"<reset>"
    except TimeoutError:
        answer = b"<still open>"
    finally:
        closed = time.monotonic() - opened
        trickling.cancel()
        writer.close()
    return closed, answer


async def _score_meanwhile(port: int, until: asyncio.Task[Any]) -> list[int]:
    """Statuses of scores sent on fresh connections every 0.1 s while `until` runs."""
    statuses = []
    for i in itertools.count():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(score_request(TX, 82_000_000 + i))
        status, _, _ = await asyncio.wait_for(read_answer(reader), 10)
        writer.close()
        statuses.append(status)
        if until.done():
            return statuses
        await asyncio.sleep(0.1)
    raise AssertionError  # unreachable


async def _attack(port: int, n: int) -> tuple[list[tuple[float, bytes]], list[int]]:
    async def all_of_them() -> list[tuple[float, bytes]]:
        return await asyncio.gather(*(_slowloris(port) for _ in range(n)))

    attack = asyncio.create_task(all_of_them())
    statuses = await _score_meanwhile(port, attack)
    return await attack, statuses


def test_slow_heads_are_closed_while_others_are_served(start: Start) -> None:
    """200 connections sending a request head slowly: each is answered 408 and closed
    within the header timeout (plus slack); a normal client is scored all along."""
    service = start(1, **SLOW)
    closed, statuses = asyncio.run(_attack(service.port, 200))
    slowest = max(seconds for seconds, _ in closed)
    print(f"\nslowloris: 200 closed within {slowest:.2f} s; {len(statuses)} scores meanwhile")
    assert slowest <= HEADER_TIMEOUT_S + SLACK_S
    assert all(seconds >= HEADER_TIMEOUT_S * 0.9 for seconds, _ in closed)
    assert all(a.startswith(b"HTTP/1.1 408") or a == b"<reset>" for _, a in closed)
    assert sum(a.startswith(b"HTTP/1.1 408") for _, a in closed) >= 190
    assert len(statuses) >= 10
    assert set(statuses) == {200}, statuses


async def _stalled_body(port: int) -> tuple[float, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = b"POST /v1/score HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    writer.write(head + b"Content-Length: 100\r\n\r\n" + b'{"transaction_id": 1')
    sent = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), BODY_TIMEOUT_S + SLACK_S + 5)
    writer.close()
    return time.monotonic() - sent, answer


def test_a_stalled_body_gets_408_and_is_closed(start: Start) -> None:
    service = start(1, **SLOW)
    seconds, answer = asyncio.run(_stalled_body(service.port))
    print(f"\nstalled body: {answer[:12]!r} after {seconds:.2f} s")
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in answer.lower()
    assert BODY_TIMEOUT_S * 0.9 <= seconds <= BODY_TIMEOUT_S + SLACK_S


async def _beyond_the_cap(port: int, cap: int) -> tuple[list[bytes], int, int]:
    """`cap` + 5 idle connections: what the last 5 read at once; a score's status while
    they are open, and once they are closed."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(cap + 5)]
    refused = [await asyncio.wait_for(r.read(), 10) for r, _ in conns[cap:]]
    during = await _one_score(port)
    for _, writer in conns:
        writer.close()
    await asyncio.sleep(0.5)  # the server sees them close
    return refused, during, await _one_score(port)


async def _one_score(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(score_request(TX, 83_000_000))
    try:
        status, _, _ = await asyncio.wait_for(read_answer(reader), 10)
    except asyncio.IncompleteReadError as exc:  # answered at accept, before the request
        status = int(exc.partial.split()[1]) if exc.partial else 0
    writer.close()
    return status


def test_connections_beyond_max_connections_are_answered_503(start: Start) -> None:
    cap = 20
    service = start(1, FRAUDOPS_SERVING_SERVER__MAX_CONNECTIONS=str(cap))
    refused, during, after = asyncio.run(_beyond_the_cap(service.port, cap))
    assert all(answer.startswith(b"HTTP/1.1 503") for answer in refused), refused
    assert during == 503
    assert after == 200


def test_admin_is_rate_limited_wrong_tokens_included(start: Start) -> None:
    token = "s3cret-token-of-24-chars"
    service = start(
        1,
        FRAUDOPS_ADMIN_TOKEN=token,
        FRAUDOPS_SERVING_LIMITS__ADMIN_BURST="3",
        FRAUDOPS_SERVING_LIMITS__ADMIN_PER_MINUTE="6",
    )
    url = f"{service.url}/admin/reload"
    wrong = [httpx.post(url, headers={"Authorization": "Bearer nope"}) for _ in range(3)]
    assert [r.status_code for r in wrong] == [401] * 3
    limited = httpx.post(url, headers={"Authorization": f"Bearer {token}"})
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["Retry-After"]) <= 10
    assert httpx.post(f"{service.url}/v1/score", json=TX).status_code == 200  # not limited
