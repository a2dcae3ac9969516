"""Dependencies of the routes: typed aliases for what the lifespan built.

They are `async` on purpose: FastAPI runs a plain `def` dependency in its thread pool, a
thread hand-off per dependency per request (it more than doubled the in-process cost of
/v1/score); these only read app state. The scoring routes call `scorer_of` and
`settings_of` directly: no dependency to solve at all.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.scoring import Scorer
from serving.settings import Settings


def settings_of(request: Request) -> Settings:
    """The service's settings."""
    settings: Settings = request.app.state.settings
    return settings


def scorer_of(request: Request) -> Scorer:
    """The scorer the lifespan built."""
    scorer: Scorer = request.app.state.scorer
    return scorer


async def get_settings(request: Request) -> Settings:
    return settings_of(request)


async def get_scorer(request: Request) -> Scorer:
    return scorer_of(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
