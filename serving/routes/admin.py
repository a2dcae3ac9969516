"""POST /admin/reload: follow the alias now (bearer token; mounted only when one is set;
rate limited per client, wrong tokens included: serving/ratelimit.py)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.deps import ScorerDep, SettingsDep
from serving.ratelimit import limit_admin

# The limit first: it counts every attempt, before the token is checked.
router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(limit_admin)],
    responses={429: {"description": "too many requests from this client (Retry-After)"}},
)
bearer = HTTPBearer(auto_error=False)


def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    expected = settings.admin_token.get_secret_value() if settings.admin_token else ""
    given = credentials.credentials if credentials else ""
    if not expected or not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.post("/reload", dependencies=[Depends(require_token)], summary="Reload the model")
def reload(scorer: ScorerDep) -> dict[str, object]:
    """Load the version the alias points at now; the old model serves until the new is warm."""
    swapped = scorer.holder.refresh()
    holder = scorer.holder
    return {
        "swapped": swapped,
        "model_version": holder.current.version if holder.ready else None,
        "error": holder.last_error,
    }
