"""GET /health (liveness) and GET /ready (a model is loaded)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.deps import ScorerDep

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", summary="Readiness", responses={503: {"description": "no model yet"}})
async def ready(scorer: ScorerDep) -> Any:
    """200 once a model is loaded, 503 before (with the reason)."""
    holder = scorer.holder
    if holder.ready:
        return {"status": "ready", "model_version": holder.current.version}
    return JSONResponse({"status": "not ready", "reason": holder.last_error}, status_code=503)
