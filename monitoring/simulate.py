"""The closed loop, simulated: production days scored, labels late, monitoring per window.

The simulator writes a production period with a named drift scenario. Day by day its
transactions are scored through the scoring service (a running one, or the same app
in-process), and the labels of the day `label_delay_days` earlier arrive through
`POST /v1/labels`. Each window is monitored once its labels are in (or at the end); a
RETRAIN retrains, and the service is told to follow the new champion.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from pipelines import schema
from pipelines.config import DriftScenario, PipelineConfig
from pipelines.errors import ServiceError
from pipelines.generate import simulate_production
from pipelines.io import write_parquet

log = logging.getLogger(__name__)

Monitor = Callable[[dt.datetime, dt.datetime], dict[str, Any]]
LABEL_CHUNK = 5000


@dataclass(frozen=True)
class Window:
    """One row of the timeline: what monitoring saw and did for a window."""

    start: dt.datetime
    end: dt.datetime
    monitored_on: dt.date
    result: dict[str, Any]
    serving_version: int


@contextlib.contextmanager
def service_client(url: str | None, capture_dir: Path, token: str | None) -> Iterator[httpx.Client]:
    """A client of the running service at `url`, or of the app started in-process."""
    if url:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
            yield client
        return
    with warnings.catch_warnings():  # Starlette's note about its own httpx use
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient

    from serving.main import create_app
    from serving.settings import load_settings

    token = secrets.token_urlsafe(16)
    settings = load_settings(
        overrides={
            "admin_token": token,
            "capture.dir": str(capture_dir),
            "model.poll_interval_s": 0,
        }
    )
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise ServiceError(
            f"{response.request.url.path}: HTTP {response.status_code}: {response.text[:300]}"
        )
    body: dict[str, Any] = response.json()
    return body


def score_day(client: httpx.Client, day: pd.DataFrame, batch_rows: int) -> int:
    """Score one day's transactions in time order; return the version that scored the last."""
    version = 0
    requests = day[list(schema.REQUEST_COLUMNS)].assign(
        tx_datetime=day[schema.TX_DATETIME].dt.strftime("%Y-%m-%dT%H:%M:%S")
    )
    records = requests.to_dict("records")
    for i in range(0, len(records), batch_rows):
        body = _check(
            client.post("/v1/score/batch", json={"transactions": records[i : i + batch_rows]})
        )
        version = int(body["model_version"])
    return version


def post_labels(client: httpx.Client, day: pd.DataFrame) -> int:
    """Send the ground truth of one day's transactions; return how many were matched."""
    pairs = [
        {"transaction_id": int(t), "tx_fraud": int(f)}
        for t, f in zip(day[schema.TRANSACTION_ID], day[schema.TX_FRAUD], strict=True)
    ]
    matched = 0
    for i in range(0, len(pairs), LABEL_CHUNK):
        matched += int(
            _check(client.post("/v1/labels", json={"labels": pairs[i : i + LABEL_CHUNK]}))[
                "matched"
            ]
        )
    return matched


def follow_champion(client: httpx.Client, champion: int, wait_s: float) -> int:
    """Ask the service to reload (admin route), else wait for its poller; return its version."""
    deadline = time.monotonic() + wait_s
    while True:
        with contextlib.suppress(httpx.HTTPError):
            client.post("/admin/reload")
        version = int(_check(client.get("/v1/model"))["version"])
        if version == champion or time.monotonic() > deadline:
            return version
        time.sleep(1)


def production_period(cfg: PipelineConfig, scenario: DriftScenario, days: int) -> pd.DataFrame:
    """Simulate the production period and keep a copy at `paths.production`."""
    prod = cfg.production.model_copy(update={"drift": scenario, "n_days": days})
    frame = simulate_production(cfg.generate, prod).sort_values(
        [schema.TX_DATETIME, schema.TRANSACTION_ID], ignore_index=True
    )
    write_parquet(frame, cfg.paths.production)
    return frame


def windows(
    first: dt.datetime, days: int, window_days: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Consecutive windows of `window_days` over the period (the last one may be shorter)."""
    edges = [first + dt.timedelta(days=d) for d in range(0, days, window_days)]
    return [
        (s, min(s + dt.timedelta(days=window_days), first + dt.timedelta(days=days))) for s in edges
    ]


def _due(
    pending: list[tuple[dt.datetime, dt.datetime]],
    clock: dt.datetime,
    delay: dt.timedelta,
    last: bool,
) -> list[tuple[dt.datetime, dt.datetime]]:
    return [w for w in pending if last or w[1] + delay <= clock]


def run(
    frame: pd.DataFrame,
    client: httpx.Client,
    monitor: Monitor,
    champion: Callable[[], int | None],
    window_days: int,
    delay_days: int,
    batch_rows: int,
    settle_s: float,
) -> list[Window]:
    """Score day by day, send labels after the delay, monitor each window when it is due."""
    days = frame[schema.TX_DATETIME].dt.normalize()
    first = days.min().to_pydatetime()
    n_days = int((days.max() - days.min()).days) + 1
    by_day = {d.to_pydatetime(): part for d, part in frame.groupby(days)}
    empty = frame.iloc[:0]
    pending = windows(first, n_days, window_days)
    delay = dt.timedelta(days=delay_days)
    timeline: list[Window] = []
    serving = 0
    for d in range(n_days):
        today = first + dt.timedelta(days=d)
        serving = score_day(client, by_day.get(today, empty), batch_rows) or serving
        if d >= delay_days:
            post_labels(client, by_day.get(today - delay, empty))
        clock = today + dt.timedelta(days=1)
        for window in _due(pending, clock, delay, last=d == n_days - 1):
            time.sleep(settle_s)  # let the capture writer flush what it queued
            result = monitor(*window)
            pending.remove(window)
            if (result.get("retrain") or {}).get("outcome") == "retrained":
                serving = follow_champion(client, champion() or serving, wait_s=60)
            timeline.append(Window(window[0], window[1], clock.date(), result, serving))
            log.info("%s", line(timeline[-1]))
    return timeline


def as_dict(w: Window) -> dict[str, Any]:
    """A timeline row as JSON-ready data."""
    return {
        "start": w.start.isoformat(),
        "end": w.end.isoformat(),
        "monitored_on": w.monitored_on.isoformat(),
        "serving_version": w.serving_version,
        **w.result,
    }


def line(w: Window) -> str:
    """One line of the printed timeline."""
    r = w.result
    drift, quality = r.get("drift") or {}, r.get("quality") or {}
    ap = quality.get("average_precision")
    judged = (
        f"AP {ap:.3f} on {quality['labelled_rows']} labelled "
        f"(reference {r['reference_average_precision']:.3f})"
        if quality.get("labelled_rows") and ap == ap  # NaN: no fraud among the labels
        else "no labels yet"
    )
    text = (
        f"{w.start:%Y-%m-%d}..{w.end - dt.timedelta(days=1):%Y-%m-%d} (seen {w.monitored_on}) "
        f"rows {r['rows']:>6}  scored by v{r['model_version']}  "
        f"drift {100 * drift.get('drift_share', 0):3.0f}%"
        f"{' + score' if drift.get('prediction_drift') else ''}  {judged}  -> {r['decision']}"
    )
    if r.get("retrain"):
        text += f"\n      {r['retrain']['message']}"
    return text + f"\n      serving v{w.serving_version}"
