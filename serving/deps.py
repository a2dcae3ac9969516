"""Dependencies of the routes: typed aliases for what the lifespan built.

They are `async` on purpose: FastAPI runs a plain `def` dependency in its thread pool, a
thread hand-off per dependency per request (it more than doubled the in-process cost of
/v1/score); these only read app state.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.scoring import Scorer
from serving.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_scorer(request: Request) -> Scorer:
    scorer: Scorer = request.app.state.scorer
    return scorer


SettingsDep = Annotated[Settings, Depends(get_settings)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
