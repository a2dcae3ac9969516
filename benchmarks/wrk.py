"""Load from `wrk` (Debian package) on 127.0.0.1, bounded in time; results parsed as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nRESULT {"requests": %d, "duration_us": %d, "errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
RANDOM_TX = """
counter = 0
request = function()
  counter = counter + 1
  -- distinct ids: a random high part per request, a counter low part per wrk thread
  local id = math.random(1, 99999) * 1000000000 + counter
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
) -> Load:
    """Run wrk against `url`: a fixed JSON `body`, or random raw transactions when None."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (make system-deps does)")
    script = script_dir / f"wrk-{connections}-{abs(hash(url)) % 10_000}.lua"
    if body is None:
        script.write_text(RANDOM_TX + DONE)
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
