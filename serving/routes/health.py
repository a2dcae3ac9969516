"""GET /health (liveness) and GET /ready (a model is loaded, the store and the capture log
can be used)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from serving.deps import ScorerDep

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness",
    responses={503: {"description": "no model yet, store unreachable or capture unwritable"}},
)
async def ready(scorer: ScorerDep, request: Request) -> Any:
    """200 when the service can answer and capture; 503 with the reasons when it cannot:
    no model loaded, the online store unreachable (or re-seeding), a log unwritable.
    The store is checked in a thread of asyncio's own executor: off the event loop, and not
    queued behind scoring requests stuck on a store that stopped answering."""
    holder = scorer.holder
    reasons = [] if holder.ready else [holder.last_error or "no model loaded yet"]
    store = await asyncio.to_thread(scorer.store.check)
    reasons += [f"online store: {store}"] if store else []
    for log in (scorer.capture, request.app.state.label_log):
        reasons += [log.error] if log.error else []
    if not reasons:
        return {"status": "ready", "model_version": holder.current.version}
    return JSONResponse(
        {"status": "not ready", "reason": "; ".join(reasons)},
        status_code=503,
        headers={"Retry-After": "1"},
    )
