"""Open-loop load: requests on a fixed schedule, each timed from its scheduled send time.

Request i is due at t0 + i / rate whatever became of the ones before it, as clients of a
service do not wait for one another (wrk2's model; wrk is closed-loop). Each goes out on an
idle keep-alive HTTP/1.1 connection of a pool that opens another connection when all are
busy, up to a cap. Past the cap a request waits for the next connection to come free and is
counted as *queued* (the schedule was not kept). Its latency still runs from its due time,
so a stall of the server shows in every request it held back, not only in the one it caught
(coordinated omission corrected, as wrk2 does). The generator's own delay, send time minus
due time, is reported apart as the *send lag*.

Plain asyncio streams, one pre-encoded request per body; timers on the select() selector:
epoll rounds its waits up to whole milliseconds, which would add up to 1 ms to every request
here, select() waits to the microsecond (it takes file descriptors below 1024, plenty for
the pool). `python -m benchmarks.openloop URL --rate R --seconds S` runs it in a process of
its own, so the CPU time it reports is the generator's alone, and prints the result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import selectors
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.measure import REPO_ROOT

DRAIN_S = 5.0  # after the last due time, how long answers are awaited; later ones are errors
MAX_CONNECTIONS = 256


@dataclass(frozen=True)
class OpenLoopResult:
    """One open-loop run; counts and percentiles cover the measured window (no warm-up)."""

    rate: float  # offered, requests/s
    seconds: float  # the measured window
    sent: int
    ok: int  # answered with 200
    errors: int  # other statuses, failed connections, no answer within DRAIN_S of the end
    queued: int  # waited for a connection, all busy at the cap: the schedule was not kept
    connections: int  # opened over the whole run, warm-up included
    achieved_rps: float  # 200s per second over the measured window
    p50_ms: float  # latency from the scheduled send time to the end of the answer
    p99_ms: float
    p999_ms: float
    max_ms: float
    lag_p99_ms: float  # send time minus scheduled time, the generator's own delay
    cpu_s: float  # the generator process, user + sys, over the whole run
    wall_s: float

    @property
    def cpu_share(self) -> float:
        """The generator's CPU use as a share of one core."""
        return self.cpu_s / self.wall_s


def request_bytes(url: str, body: bytes | None) -> bytes:
    """A whole HTTP/1.1 request: POST of a JSON `body`, or GET when None."""
    parts = urlsplit(url)
    head = f"{'GET' if body is None else 'POST'} {parts.path or '/'} HTTP/1.1\r\n"
    head += f"Host: {parts.netloc}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + (body or b"")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response off `reader`: its status, and whether the connection stays open."""
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    status = int(head[9:12])
    start = head.find(b"\r\ncontent-length:")
    if start >= 0:
        end = head.index(b"\r\n", start + 2)
        await reader.readexactly(int(head[start + 17 : end]))
    elif b"\r\ntransfer-encoding: chunked" in head:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")  # the empty line after the last chunk (no trailers)
    else:
        raise ValueError("a response without a length")
    return status, b"\r\nconnection: close" not in head


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Run:
    """The pool and the outcome of each scheduled request (by index)."""

    def __init__(self, url: str, requests: Sequence[bytes], n: int, cap: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.requests, self.cap = requests, cap
        self.idle: list[Conn] = []
        self.slots = 0  # connections open, opening, or about to reopen after an error
        self.backlog: deque[tuple[int, float]] = deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.queued = [False] * n
        self.lag = [math.nan] * n
        self.done = [math.nan] * n  # when the 200 ended; nan for errors and no answer
        self.connections = 0

    async def schedule(self, t0: float, rate: float) -> None:
        """Hand each request to a connection at its due time, never waiting for one."""
        loop = asyncio.get_running_loop()
        for i in range(len(self.done)):
            due = t0 + i / rate
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            if (conn := self._take_idle()) is not None:
                self._start(conn, i, due)
            elif self.slots < self.cap:
                self.slots += 1
                self._start(None, i, due)
            else:
                self.queued[i] = True
                self.backlog.append((i, due))

    def _take_idle(self) -> Conn | None:
        """The idle connection used last, skipping those the server closed meanwhile (idle
        keep-alive connections time out: uvicorn's after 5 s)."""
        while self.idle:
            conn = self.idle.pop()
            if not conn[0].at_eof():
                return conn
            conn[1].close()
            self.slots -= 1
        return None

    def _start(self, conn: Conn | None, i: int, due: float) -> None:
        task = asyncio.create_task(self._serve(conn, i, due))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, conn: Conn | None, i: int, due: float) -> None:
        """Send request `i`, then the backlog's oldest, until none waits; then go idle."""
        while True:
            conn = await self._one(conn, i, due)
            if not self.backlog:
                break
            i, due = self.backlog.popleft()
        if conn is None:
            self.slots -= 1
        else:
            self.idle.append(conn)

    async def _one(self, conn: Conn | None, i: int, due: float) -> Conn | None:
        """Request `i` on `conn`, or on a new connection; the connection if it stays open.
        A reused connection found closed before any answer (the server timed it out as the
        request left) is replaced once, as HTTP clients do; the time counts all the same."""
        loop = asyncio.get_running_loop()
        for retry in (True, False):
            reused = conn is not None
            try:
                if conn is None:
                    conn = await asyncio.open_connection(self.host, self.port)
                    self.connections += 1
                    self.writers.add(conn[1])
                if math.isnan(self.lag[i]):
                    self.lag[i] = loop.time() - due
                conn[1].write(self.requests[i % len(self.requests)])
                status, keep = await read_response(conn[0])
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                if conn is not None:
                    conn[1].close()
                conn = None
                if retry and reused and not getattr(exc, "partial", b""):
                    continue
                return None
            except (OSError, ValueError, asyncio.LimitOverrunError):
                if conn is not None:
                    conn[1].close()
                return None
            if status == 200:
                self.done[i] = loop.time()
            if not keep:
                conn[1].close()
                return None
            return conn
        return None

    async def finish(self, drain_s: float) -> None:
        """Wait up to `drain_s` for the answers still due, then drop the rest and close."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=drain_s)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in self.writers:
            writer.close()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile (0 < q <= 1) of sorted values; nan when there are none."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def _result(
    run: _Run, t0: float, rate: float, warm: int, cpu_s: float, wall_s: float
) -> OpenLoopResult:
    measured = range(warm, len(run.done))
    answered = [i for i in measured if not math.isnan(run.done[i])]
    ms = sorted((run.done[i] - (t0 + i / rate)) * 1000 for i in answered)
    lags = sorted(run.lag[i] * 1000 for i in measured if not math.isnan(run.lag[i]))
    span = max((run.done[i] for i in answered), default=t0) - (t0 + warm / rate)
    return OpenLoopResult(
        rate=rate,
        seconds=len(measured) / rate,
        sent=len(lags),
        ok=len(ms),
        errors=len(measured) - len(ms),
        queued=sum(run.queued[i] for i in measured),
        connections=run.connections,
        achieved_rps=len(ms) / span if span > 0 else 0.0,
        p50_ms=percentile(ms, 0.5),
        p99_ms=percentile(ms, 0.99),
        p999_ms=percentile(ms, 0.999),
        max_ms=ms[-1] if ms else math.nan,
        lag_p99_ms=percentile(lags, 0.99),
        cpu_s=cpu_s,
        wall_s=wall_s,
    )


def _select_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


def open_loop(
    url: str,
    bodies: Sequence[bytes | None],
    rate: float,
    seconds: float,
    warmup_s: float = 0.0,
    connections: int = MAX_CONNECTIONS,
    drain_s: float = DRAIN_S,
) -> OpenLoopResult:
    """Offer `rate` requests/s to `url` for `warmup_s` + `seconds` (the bodies in turn, GET
    for None); the result leaves the warm-up out. Returns by the end plus `drain_s`."""
    requests = [request_bytes(url, body) for body in bodies]
    warm, n = round(warmup_s * rate), round((warmup_s + seconds) * rate)
    run = _Run(url, requests, n, connections)

    async def go() -> float:
        t0 = asyncio.get_running_loop().time() + 0.01
        await run.schedule(t0, rate)
        await run.finish(max(0.0, t0 + n / rate + drain_s - asyncio.get_running_loop().time()))
        return t0

    # The CPU time of this thread, which runs the whole generator (numeric hosts resolve
    # without asyncio's resolver threads); a process's time would count a test's server too.
    cpu, wall = time.thread_time(), time.monotonic()
    with asyncio.Runner(loop_factory=_select_loop) as runner:
        t0 = runner.run(go())
    return _result(run, t0, rate, warm, time.thread_time() - cpu, time.monotonic() - wall)


def run_process(
    url: str, bodies: Path | None, rate: float, seconds: float, warmup_s: float
) -> OpenLoopResult:
    """`open_loop` in a fresh process (the CLI below), whose CPU time is the generator's alone."""
    args = [sys.executable, "-m", "benchmarks.openloop", url, f"--rate={rate}"]
    args += [f"--seconds={seconds}", f"--warmup={warmup_s}"]
    args += [] if bodies is None else [f"--bodies={bodies}"]
    out = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    return OpenLoopResult(**json.loads(out.strip().splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> int:
    """Run once and print the result as JSON (the CLI of the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.openloop", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True, help="measured window")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds before it")
    parser.add_argument("--connections", type=int, default=MAX_CONNECTIONS, help="the cap")
    parser.add_argument("--bodies", type=Path, help="JSON bodies to POST, one a line (else GET)")
    args = parser.parse_args(argv)
    bodies: list[bytes | None] = [None]
    if args.bodies is not None:
        bodies = [line for line in args.bodies.read_bytes().splitlines() if line.strip()]
    done = open_loop(args.url, bodies, args.rate, args.seconds, args.warmup, args.connections)
    print(json.dumps(asdict(done)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
