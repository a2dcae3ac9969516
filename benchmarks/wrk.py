"""Load from `wrk` (Debian package) on 127.0.0.1, bounded in time; results parsed as JSON."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_runs = itertools.count(1)  # one number per wrk run of this process: ids never repeat

DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nRESULT {"requests": %d, "duration_us": %d, "errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
# Every request carries transaction ids never sent before (the service answers a repeated id
# with its first answer, far cheaper than scoring): run number, wrk thread, request counter.
IDS = """
local threads = 0
setup = function(thread) thread:set("tid", threads); threads = threads + 1 end
counter = 0
local function next_id()
  counter = counter + 1
  -- below 2^53: exact in LuaJIT's numbers; apart from the other loads' ids (< 6 * 10^15)
  return 6000000000000000 + RUN * 10000000000000 + tid * 1000000000000 + counter * 100000
end
"""
RANDOM_TX = """
request = function()
  local id = next_id()
  local body = string.format('{"transaction_id": %d, "tx_datetime": "2018-10-%02dT%02d:%02d:%02d", '
    .. '"customer_id": %d, "terminal_id": %d, "tx_amount": %.2f}', id, 1 + counter % 28,
    counter % 24, counter % 60, counter % 59, math.random(0, 4999), math.random(0, 9999),
    math.random() * 150)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk(
    url: str,
    connections: int,
    seconds: int,
    script_dir: Path,
    body: str | None = None,
    threads: int = 1,
    batch_rows: int = 0,
) -> Load:
    """Run wrk against `url`: a fixed JSON `body`; else random raw transactions with new
    ids, one per request or, with `batch_rows`, batches of that many."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (make system-deps does)")
    script = script_dir / f"wrk-{connections}-{abs(hash(url)) % 10_000}.lua"
    ids = IDS.replace("RUN", str(next(_runs)))
    if batch_rows:
        script.write_text(ids + _fresh_batch(batch_rows) + DONE)
    elif body is None:
        script.write_text(ids + RANDOM_TX + DONE)
    else:
        static = (
            f"wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n"
            f"wrk.body = [==[{body}]==]\n"
        )
        script.write_text(static + DONE)
    out = subprocess.run(
        [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    data = json.loads(line[len("RESULT ") :])
    return Load(
        data["requests"],
        data["duration_us"] / 1e6,
        data["errors"],
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
    )


def _fresh_batch(rows: int) -> str:
    """A wrk `request` sending `rows` random raw transactions with new ids (spread over
    customers, terminals and days as `RANDOM_TX`: one batch repeated would pile every
    request's rows onto the same customers and times)."""
    return f"""
request = function()
  local base, parts = next_id(), {{}}
  for i = 1, {rows} do
    local k = counter * {rows} + i
    parts[i] = string.format('{{"transaction_id": %d, '
      .. '"tx_datetime": "2018-10-%02dT%02d:%02d:%02d", '
      .. '"customer_id": %d, "terminal_id": %d, "tx_amount": %.2f}}', base + i, 1 + k % 28,
      k % 24, k % 60, k % 59, math.random(0, 4999), math.random(0, 9999), math.random() * 150)
  end
  local body = '{{"transactions":[' .. table.concat(parts, ',') .. ']}}'
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, body)
end
"""
