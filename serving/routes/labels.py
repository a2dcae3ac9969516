"""POST /v1/labels: delayed ground truth (the Ground Truth counterpart)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

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
    """Labels update the terminal risk windows; unknown ids are kept aside and counted.
    They are in the label log before the answer is sent (a 503 when it cannot be written)."""
    pairs = [(label.transaction_id, label.tx_fraud) for label in body.labels]
    now = dt.datetime.now(dt.UTC).isoformat()
    request.app.state.label_log.append_records(
        [{"received_at": now, "transaction_id": t, "tx_fraud": f} for t, f in pairs]
    )
    store = scorer.store
    if store.remote:  # off the event loop (see serving/routes/score.py)
        matched, unknown = await run_in_threadpool(store.label, pairs)
    else:
        matched, unknown = store.label(pairs)
    return LabelsAccepted(received=len(pairs), matched=matched, unknown=unknown)
