"""The serving section's figures, its targets, and its text and tables (benchmarks/serving.py
measures them)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from benchmarks.openloop import MAX_CONNECTIONS, OpenLoopResult
from benchmarks.report import SectionResult, Target, now_utc, table, targets_table
from benchmarks.servers import POLL_S, QUIET, SETTLE_WINDOW_S
from benchmarks.wrk import Load

BATCH_CONNECTIONS = (8, 2)


@dataclass(frozen=True)
class Plan:
    """How long each load runs, and how many times."""

    wrk_s: int  # each closed-loop (wrk) run
    rate: float  # offered requests/s in the open loop
    open_s: float  # its measured window, after `warmup_s`
    warmup_s: float
    floor_s: float  # the generator against a trivial responder
    rounds: int  # of batch runs alternating the servers
    starts: int  # of ours, each timed from spawn to ready


@dataclass(frozen=True)
class Figures:
    """Everything the section measured."""

    plan: Plan
    in_process_p50_ms: float
    closed: list[dict[str, Load]]  # per round: ours_64, theirs_64, ours_1
    floor: OpenLoopResult
    open: OpenLoopResult
    open_server_cpu_share: float  # of one core, ours during the open loop
    batches: dict[tuple[str, int, int], Load]  # (ours | mlflow, round, connections)
    starts: list[float]
    open_jumps: OpenLoopResult | None = None  # the same load, times jumping between days

    def closed_median(self, name: str, figure: str) -> float:
        """The median over the rounds of `figure` (rps, p50_ms) of the run `name`."""
        return float(statistics.median(getattr(r[name], figure) for r in self.closed))

    def batch_rps(self, name: str) -> float:
        """Median over the rounds of the better of the connection counts, rows/s."""
        rounds = range(self.plan.rounds)
        best = [max(self.batches[name, k, c].rps for c in BATCH_CONNECTIONS) for k in rounds]
        return statistics.median(best) * 1000


def _targets(f: Figures) -> list[Target]:
    op = f.open
    ours, theirs = f.closed_median("ours_64", "rps"), f.closed_median("theirs_64", "rps")
    ratio = ours / theirs
    one = f.closed_median("ours_1", "p50_ms")
    batch = f.batch_rps("ours") / f.batch_rps("mlflow")
    gap = one - f.in_process_p50_ms
    start = statistics.median(f.starts)
    batch_errors = sum(v.errors for (name, _, _), v in f.batches.items() if name != "mlflow")
    served = any(name == "ours_served" for name, _, _ in f.batches)
    closed_errors = sum(r[n].errors for r in f.closed for n in ("ours_64", "ours_1"))
    errors = closed_errors + op.errors + batch_errors
    rounds = len(f.closed)
    each = ", ".join(f"{s:.2f}" for s in f.starts)
    return [
        Target(
            f"/v1/score req/s per worker vs mlflow models serve, 64 connections (closed loop, "
            f"medians of {rounds})",
            ">= 25x",
            f"{ratio:.1f}x ({ours:,.0f} vs {theirs:,.0f})",
            ratio >= 25,
        ),
        Target(
            f"/v1/score p99 at {f.plan.rate:.0f} requests/s offered (open loop, 1 worker)",
            "< 10 ms",
            f"{op.p99_ms:.2f} ms (p50 {op.p50_ms:.2f}, p99.9 {op.p999_ms:.2f}; "
            f"{op.achieved_rps:.0f}/s achieved)",
            op.p99_ms < 10,
        ),
        Target(
            f"/v1/score/batch rows/s vs mlflow, {1000:,} rows (medians, 1 worker each)",
            ">= 4x",
            f"{batch:.1f}x ({f.batch_rps('ours'):,.0f} vs {f.batch_rps('mlflow'):,.0f})",
            batch >= 4,
        ),
        *(
            [
                Target(
                    f"/v1/score/batch rows/s as configured (2 workers) vs mlflow's default "
                    f"(1 worker), {1000:,} rows (medians)",
                    ">= 4x",
                    f"{f.batch_rps('ours_served') / f.batch_rps('mlflow'):.1f}x "
                    f"({f.batch_rps('ours_served'):,.0f} vs {f.batch_rps('mlflow'):,.0f})",
                    f.batch_rps("ours_served") >= 4 * f.batch_rps("mlflow"),
                )
            ]
            if served
            else []
        ),
        Target(
            f"/v1/score p50 at 1 connection (median of {rounds}) minus in-process p50",
            "<= 0.5 ms",
            f"{gap:.2f} ms ({one:.2f} - {f.in_process_p50_ms:.2f})",
            gap <= 0.5,
        ),
        Target(
            f"start to ready, python -m serving, 1 worker (median of {len(f.starts)})",
            "<= 10 s",
            f"{start:.2f} s ({each})",
            start <= 10,
        ),
        Target("errors of ours, every run above", "0", str(errors), errors == 0),
    ]


def _closed_row(name: str, load: Load, rows_per_request: int = 1) -> tuple[str, ...]:
    return (
        name,
        f"{load.requests:,}",
        f"{load.rps * rows_per_request:,.0f}",
        str(load.errors),
        f"{load.p50_ms:.2f}",
        f"{load.p99_ms:.2f}",
    )


def _closed_table(f: Figures) -> str:
    rows = []
    for k, runs in enumerate(f.closed):
        rows += [
            _closed_row(f"round {k + 1}: ours /v1/score, 64 conn", runs["ours_64"]),
            _closed_row(
                f"round {k + 1}: mlflow /invocations (features given), 64 conn", runs["theirs_64"]
            ),
            _closed_row(f"round {k + 1}: ours /v1/score, 1 conn", runs["ours_1"]),
        ]
    for (name, k, conns), load in f.batches.items():
        what = {
            "ours": "ours /v1/score/batch, 1 worker",
            "ours_served": "ours /v1/score/batch, 2 workers (as configured)",
        }.get(name, "mlflow /invocations, 1 worker")
        rows.append(_closed_row(f"round {k + 1}: {what} x1000, {conns} conn", load, 1000))
    return table(("Run", "Requests", "Rows/s", "Errors", "p50 ms", "p99 ms"), rows)


def _open_row(name: str, r: OpenLoopResult) -> tuple[str, ...]:
    counts = (r.rate, r.achieved_rps, r.sent, r.errors, r.queued, r.connections)
    ms = (r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms, r.lag_p99_ms)
    return (
        name,
        *(f"{v:,.0f}" for v in counts),
        *(f"{v:.2f}" for v in ms),
        f"{r.cpu_share:.0%}",
    )


def _open_table(f: Figures) -> str:
    heads: tuple[str, ...] = (
        "Run",
        "Offered/s",
        "Achieved/s",
        "Requests",
        "Errors",
        "Queued",
        "Connections",
    )
    heads += ("p50 ms", "p99 ms", "p99.9 ms", "Max ms", "Send lag p99 ms", "Generator CPU")
    rows = [
        _open_row("the generator's floor: a trivial responder", f.floor),
        _open_row("ours /v1/score, 1 worker, transactions in time order", f.open),
    ]
    if f.open_jumps is not None:
        rows.append(_open_row("ours /v1/score, 1 worker, times jumping days", f.open_jumps))
    return table(heads, rows)


def _text(f: Figures, doc: str) -> list[str]:
    """The method, paragraph by paragraph (one before each table)."""
    p = f.plan
    head = " ".join(doc.split("\n", 2)[2].split())
    return [
        f"Measured {now_utc()}. {head} Ours: `python -m serving` "
        f"with one worker (FRAUDOPS_SERVING_SERVER__WORKERS=1: a single uvicorn process), "
        f"configured by FRAUDOPS_SERVING_* variables only; SQLite online store, capture on. "
        f"MLflow: `mlflow models serve --env-manager local` (its default, one worker).",
        f"**Closed loop** (wrk: each connection sends its next request when the last is "
        f"answered): {p.wrk_s} s per row, one after the other, each once both servers are idle "
        f"(under {QUIET:.0%} of a core for {SETTLE_WINDOW_S} s), in {len(f.closed)} rounds "
        f"that alternate which server goes first; the targets take the median of the rounds. "
        f"Ours gets random raw transactions, MLflow the features of one. In-process p50 = "
        f"the median of `Scorer.score` on one transaction, {f.in_process_p50_ms:.3f} ms. "
        f"Batches of 1,000: ours new random raw transactions in every request (every id new: "
        f"a repeated one is answered from its first answer; runs before 2026-12-02 sent one "
        f"batch over and over, so after the first request they measured replays, reads "
        f"only), MLflow the features of the last 1,000 rows; in {p.rounds} rounds that "
        f"alternate the servers; the target compares the median of our rounds with the "
        f"median of MLflow's, each round counting each server's better run of "
        f"{' and '.join(map(str, BATCH_CONNECTIONS))} connections. Then the same rounds "
        f"against ours as configured (configs/serving.yaml: 2 workers under gunicorn, as "
        f"`make serve` runs it), the comparison earlier runs made.",
        f"**Open loop** (latency at a fixed offered rate, what a user feels): "
        f"benchmarks/openloop.py, our own generator (wrk2 is not packaged). Request i is due "
        f"at t0 + i / {p.rate:.0f} s, whatever became of the others; it goes out on an idle "
        f"keep-alive HTTP/1.1 connection of a pool that opens another when all are busy (up "
        f"to {MAX_CONNECTIONS}; past that a request waits and is counted as queued), and its "
        f"latency runs from its scheduled send time to the end of its answer, so a stall "
        f"counts in every request it held back (coordinated omission corrected, as wrk2 "
        f"does). Send lag = actual minus scheduled send time, the generator's own delay. "
        f"{p.warmup_s:g} s of warm-up, then {p.open_s:g} s measured, distinct single "
        f"transactions, random customers and terminals; the target takes them in time order, "
        f"2 ms apart from just after the seeded history, as a payment system sends them. The "
        f"last row sends the same load with each request on another day of a 28-day span (as "
        f"the closed-loop script does): most arrive weeks before the newest transaction the "
        f"store has seen, the worst case for its timelines. The generator runs in a process "
        f"of its own (asyncio, select() timers); "
        f"its CPU is its thread's time over the run, as a share of one core. Its floor: the "
        f"same generator at the same rate against a trivial asyncio responder "
        f"(benchmarks/responder.py), i.e. what it adds itself. Ours used "
        f"{f.open_server_cpu_share:.0%} of a core at {p.rate:.0f}/s.",
        f"**Start to ready**: from spawning `python -m serving` (one worker, the same model and "
        f"stores, after the loads, both servers stopped) to its first 200 from `/ready`, "
        f"polled every {POLL_S * 1000:.0f} ms; {len(f.starts)} starts, one after the other, "
        f"each shown in the targets.",
    ]


def report(f: Figures, doc: str) -> SectionResult:
    """The section: the method, the closed- and open-loop tables, the targets."""
    targets = _targets(f)
    intro, closed, open_, start = _text(f, doc)
    body = [
        intro,
        closed,
        _closed_table(f),
        open_,
        _open_table(f),
        start,
        "### Targets",
        targets_table(targets),
    ]
    return SectionResult("\n\n".join(body), targets)
