"""The scoring service: `create_app()` builds the FastAPI app; its lifespan loads the heavy
things once (online store, model, capture writers) and stops them cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from pipelines import tracking
from pipelines.schema import feature_columns
from serving.capture import CaptureLog
from serving.errors import add_exception_handlers
from serving.features import windows
from serving.metrics import exposition, make_metrics
from serving.middleware import LimitBody, RecordMetrics
from serving.model import ModelHolder, Poller
from serving.ratelimit import TokenBucket
from serving.routes import admin, health, labels, model, score
from serving.schemas import request_types
from serving.scoring import Scorer
from serving.settings import Settings, load_settings
from serving.store import open_store
from serving.timeouts import BodyTimeout
from serving.tuning import freeze_heap, prepare_worker

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    prepare_worker()
    store = open_store(
        settings.online_store.backend,
        settings.online_store.sqlite_path,
        settings.redis_url,
        windows(settings.feature_config),
        settings.online_store.timeout_s,
    )
    holder = ModelHolder(
        settings.model_name,
        settings.model.alias,
        feature_columns(settings.feature_config),
        app.state.metrics.model_changed,
    )

    def load_model() -> None:
        tracking.connect()
        holder.refresh()

    # Seeding the store (SQLite or Redis work) and loading the model (MLflow) overlap: the
    # service is ready in the longer of the two, not their sum.
    seeded, _ = await asyncio.gather(
        asyncio.to_thread(store.seed, settings.online_store.seed_dir),
        asyncio.to_thread(load_model),
    )
    log.info("online store (%s): %d events seeded", settings.online_store.backend, seeded)
    cap = settings.capture
    failed = app.state.metrics.capture_failures.inc
    capture = CaptureLog(cap.dir, cap.fsync_interval_s, failed)
    label_log = CaptureLog(cap.dir / "labels", cap.fsync_interval_s, failed)
    capture.start()
    label_log.start()
    poller = Poller(holder, settings.model.poll_interval_s)
    poller.start()
    app.state.scorer = Scorer(
        store,
        holder,
        capture,
        app.state.metrics,
        settings.feature_config,
        settings.limits.max_ahead_days,
    )
    app.state.label_log = label_log
    freeze_heap()
    try:
        yield
    finally:
        poller.stop()
        capture.close()  # fsync: what was answered is on disk
        label_log.close()
        store.close()


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
    scoring = score.make_router(request_types(settings.feature_config))
    for router in (scoring, labels.router, model.router, health.router):
        app.include_router(router)
    if settings.admin_token is not None:
        limits = settings.limits
        app.state.admin_bucket = TokenBucket(limits.admin_burst, limits.admin_per_minute / 60)
        app.include_router(admin.router)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        body, content_type = exposition(metrics.registry)
        return Response(body, media_type=content_type)

    add_exception_handlers(app)
    app.add_middleware(LimitBody, max_bytes=settings.limits.max_body_bytes)
    # Outside LimitBody, which reads a chunked body itself; inside RecordMetrics (counts 408s).
    app.add_middleware(BodyTimeout, timeout_s=settings.server.body_timeout_s)
    app.add_middleware(RecordMetrics, metrics=metrics)  # outermost: counts the 413s too
    return app
