"""The serving section's targets and tables, from made-up figures (no server runs)."""

from __future__ import annotations

import dataclasses

from benchmarks import serving
from benchmarks.openloop import OpenLoopResult
from benchmarks.serving import FULL
from benchmarks.serving_report import Figures, report
from benchmarks.wrk import Load

DOC = serving.__doc__ or ""
OPEN = OpenLoopResult(
    rate=500, seconds=25, sent=12_500, ok=12_500, errors=0, queued=0, connections=3,
    achieved_rps=500, p50_ms=0.6, p99_ms=2.0, p999_ms=5.0, max_ms=9.0, lag_p99_ms=0.2,
    cpu_s=1.5, wall_s=30.0,
)  # fmt: skip


def _figures(ours_rps: float, open_p99_ms: float, batch_errors: int = 0) -> Figures:
    batches = {}
    for k in range(FULL.rounds):
        for conns in (8, 2):
            batches["ours", k, conns] = Load(200, 10.0, batch_errors, 40.0, 60.0)  # 20,000 rows/s
            batches["mlflow", k, conns] = Load(40, 10.0, 0, 200.0, 400.0)  # 4,000 rows/s
    closed = [
        {
            "ours_64": Load(int(ours_rps * 10) + k, 10.0, 0, 20.0, 40.0),
            "theirs_64": Load(1000, 10.0, 0, 700.0, 900.0),  # 100 req/s
            "ours_1": Load(25_000, 10.0, 0, 0.5 + k / 100, 1.0),
        }
        for k in range(FULL.rounds)
    ]
    slow = dataclasses.replace(OPEN, p99_ms=open_p99_ms)
    return Figures(FULL, 0.3, closed, OPEN, slow, 0.4, batches, [3.0, 2.5, 4.0])


def test_every_target_passes_on_good_figures() -> None:
    done = report(_figures(ours_rps=3000, open_p99_ms=2.0), DOC)
    assert [t.passed for t in done.targets] == [True] * 6
    assert "3.00 s (3.00, 2.50, 4.00)" in {t.value for t in done.targets}
    assert "5.0x (20,000 vs 4,000)" in {t.value for t in done.targets}
    assert "fewest" not in done.body  # the old supervisor balanced connections
    assert "supervisor" not in done.body


def test_each_target_fails_on_its_own_figure() -> None:
    verdicts = report(_figures(2000, 12.0, batch_errors=3), DOC).targets
    failed = [t.name.split(",")[0] for t in verdicts if not t.passed]
    assert failed == [
        "/v1/score req/s per worker vs mlflow models serve",  # 20x < 25x
        "/v1/score p99 at 500 requests/s offered (open loop",
        "errors of ours",
    ]


def test_the_batch_as_configured_is_a_target_when_measured() -> None:
    f = _figures(ours_rps=3000, open_p99_ms=2.0)
    served = {("ours_served", k, c): v for (n, k, c), v in f.batches.items() if n == "ours"}
    done = report(dataclasses.replace(f, batches={**f.batches, **served}), DOC)
    assert len(done.targets) == 7
    assert all(t.passed for t in done.targets)
