"""POST /v1/labels: delayed ground truth (the Ground Truth counterpart)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request

from serving.deps import ScorerDep
from serving.json_body import BODY_ERRORS, JsonRoute, require_json
from serving.schemas import Labels, LabelsAccepted

router = APIRouter(
    prefix="/v1",
    tags=["labels"],
    route_class=JsonRoute,
    dependencies=[Depends(require_json)],
    responses=BODY_ERRORS,
)


@router.post("/labels", response_model=LabelsAccepted, summary="Report fraud labels")
async def labels(body: Labels, scorer: ScorerDep, request: Request) -> LabelsAccepted:
    """Labels update the terminal risk windows; unknown ids are kept aside and counted."""
    pairs = [(label.transaction_id, label.tx_fraud) for label in body.labels]
    matched, unknown = scorer.store.label(pairs)
    now = dt.datetime.now(dt.UTC).isoformat()
    request.app.state.label_log.submit(
        [{"received_at": now, "transaction_id": t, "tx_fraud": f} for t, f in pairs]
    )
    return LabelsAccepted(received=len(pairs), matched=matched, unknown=unknown)
