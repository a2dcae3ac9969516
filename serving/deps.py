"""Dependencies of the routes: typed aliases for what the lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.scoring import Scorer
from serving.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_scorer(request: Request) -> Scorer:
    scorer: Scorer = request.app.state.scorer
    return scorer


SettingsDep = Annotated[Settings, Depends(get_settings)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
