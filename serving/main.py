"""The scoring service: `create_app()` builds the FastAPI app; its lifespan loads the heavy
things once (online store, model, capture writers) and stops them cleanly."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from pipelines import tracking
from pipelines.features import feature_columns
from serving.capture import CaptureWriter
from serving.features import windows
from serving.metrics import exposition, make_metrics
from serving.middleware import LimitBody, RecordMetrics, ScoringLane, invalid_body
from serving.model import ModelHolder, ModelNotReadyError, Poller
from serving.routes import admin, health, labels, model, score
from serving.scoring import Scorer
from serving.settings import Settings, load_settings
from serving.store import open_store

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    _one_thread_per_worker()
    tracking.connect()
    store = open_store(
        settings.online_store.backend,
        settings.online_store.sqlite_path,
        settings.redis_url,
        windows(settings.feature_config),
    )
    seeded = store.seed(settings.online_store.seed_dir)
    log.info("online store (%s): %d events seeded", settings.online_store.backend, seeded)
    holder = ModelHolder(
        settings.model_name,
        settings.model.alias,
        feature_columns(settings.feature_config),
        app.state.metrics.model_changed,
    )
    holder.refresh()
    cap = settings.capture
    capture = CaptureWriter(cap.dir, cap.queue_rows, cap.flush_rows, cap.flush_interval_s)
    label_log = CaptureWriter(
        cap.dir / "labels", cap.queue_rows, cap.flush_rows, cap.flush_interval_s
    )
    capture.start()
    label_log.start()
    poller = Poller(holder, settings.model.poll_interval_s)
    poller.start()
    app.state.scorer = Scorer(store, holder, capture, app.state.metrics, settings.feature_config)
    app.state.label_log = label_log
    # Everything loaded so far (libraries, the model) lives as long as the process: keep it
    # out of the garbage collector's full passes, which a batch's records would otherwise
    # trigger over and over (each pass walks every object of the process).
    gc.freeze()
    # A request allocates a few hundred objects and frees nearly all of them itself; the
    # default thresholds (700, 10, 10) still run a collection every few requests, and older
    # generations often enough to show in the tail latency (p99 at 8 connections: 7.4-11.5 ms
    # with them, 6.0-8.4 ms with these, in one run each here). Cycles are still collected.
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        poller.stop()
        capture.stop()  # drains the queue: a graceful shutdown loses no capture
        label_log.stop()
        store.close()


def _one_thread_per_worker() -> None:
    """Parallel scoring of one row only adds overhead; workers are the parallelism.

    threadpoolctl only limits libraries already loaded, so load scikit-learn's OpenMP
    runtime first. (`python -m serving` also sets OMP_NUM_THREADS=1 before any import.)
    """
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    # Models are fitted on named columns; the service passes the same columns as an array.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; `settings` default to configs/serving.yaml and the environment."""
    settings = settings or load_settings()
    app = FastAPI(
        title="fraudops scoring service",
        version="1",
        lifespan=lifespan,
        description="Real-time fraud scoring with online features. See /docs.",
    )
    app.state.settings = settings
    app.state.metrics = metrics = make_metrics()
    for router in (score.router, labels.router, model.router, health.router):
        app.include_router(router)
    if settings.admin_token is not None:
        app.include_router(admin.router)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        body, content_type = exposition(metrics.registry)
        return Response(body, media_type=content_type)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return Response(invalid_body(exc), status_code=422, media_type="application/json")

    @app.exception_handler(ModelNotReadyError)
    async def not_ready(request: Request, exc: ModelNotReadyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    app.add_middleware(RecordMetrics, metrics=metrics)
    app.add_middleware(LimitBody, max_bytes=settings.limits.max_body_bytes)
    app.add_middleware(  # outermost: scoring requests skip the layers above
        ScoringLane,
        metrics=metrics,
        max_bytes=settings.limits.max_body_bytes,
        handlers=score.LANE,
    )
    return app
