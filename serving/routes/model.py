"""GET /v1/model: what is serving now."""

from __future__ import annotations

from fastapi import APIRouter

from serving.deps import ScorerDep
from serving.schemas import ModelInfo

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", response_model=ModelInfo, summary="The model being served")
async def model(scorer: ScorerDep) -> ModelInfo:
    """Name, version, alias, data version, threshold, features and scorer of the current model."""
    m = scorer.holder.current
    return ModelInfo(
        name=m.name,
        version=m.version,
        alias=m.alias,
        data_version=m.data_version,
        threshold=m.threshold,
        features=m.features,
        loaded_at=m.loaded_at,
        scorer=m.scorer,
    )
