"""The model being served: loaded from the registry by alias, warmed, swapped atomically.

A request takes one reference to the current `LoadedModel` and scores with it to the end,
so a swap never fails or mixes versions in flight. A failed load keeps the old model and
is reported (`last_error`, the `fraudops_model_load_failures_total` counter).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipelines import reasons, tracking
from pipelines.errors import FraudOpsError
from serving.compiled import compile_model
from serving.schemas import ScorerName

log = logging.getLogger(__name__)


class ModelNotReadyError(FraudOpsError):
    """No model is loaded yet (the service answers 503)."""


class Reasoner:
    """The exact contributions of one loaded model's features (`?explain=true`), its
    explainer built on the first request that asks (importing shap costs seconds and
    memory a service that is never asked should not pay), one call at a time."""

    def __init__(self, estimator: Any, features: list[str]) -> None:
        self._estimator, self._features = estimator, features
        self._explainer: reasons.Explainer | None = None
        self._lock = threading.Lock()

    def prepare(self) -> reasons.Explainer:
        """The explainer, built if need be (ReasonsUnavailableError for another kind)."""
        with self._lock:
            if self._explainer is None:
                self._explainer = reasons.Explainer(self._estimator, len(self._features))
            return self._explainer

    def top(self, x: NDArray[np.float64], k: int = reasons.TOP) -> reasons.Reasons:
        """The `k` largest exact contributions of each row."""
        explainer = self.prepare()
        with self._lock:
            contributions = explainer.contributions(x, "exact")
        return reasons.top(contributions, self._features, k)


@dataclass(frozen=True)
class LoadedModel:
    """A model with everything needed to score and to say which version scored."""

    estimator: Any
    name: str
    version: int
    alias: str
    threshold: float
    features: list[str]
    data_version: str
    loaded_at: dt.datetime

    compiled: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None
    reasoner: Reasoner | None = None

    @property
    def scorer(self) -> ScorerName:
        """Which path scores: the verified compiled scorer, or the model's own predict_proba."""
        return "compiled" if self.compiled is not None else "predict_proba"

    def score(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Fraud probability of each row (the compiled path when the model has one)."""
        if self.compiled is not None:
            return self.compiled(x)
        return np.asarray(self.estimator.predict_proba(x)[:, 1], dtype=np.float64)


class ModelHolder:
    """Follows an alias of a registered model and swaps versions in place."""

    def __init__(
        self,
        name: str,
        alias: str,
        expected_features: list[str],
        on_change: Callable[[str, str, int | None, bool], None] | None = None,
    ) -> None:
        self.name, self.alias = name, alias
        self._on_change = on_change or (lambda *_: None)
        self._expected = expected_features
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()  # one load at a time; reads never wait
        self.last_error: str | None = None
        self.load_failures = 0

    @property
    def current(self) -> LoadedModel:
        model = self._current
        if model is None:
            raise ModelNotReadyError(f"no version of {self.name!r}@{self.alias} is loaded yet")
        return model

    @property
    def ready(self) -> bool:
        return self._current is not None

    def refresh(self) -> bool:
        """Load the version the alias points at if it is not the one served; True if swapped."""
        with self._lock:
            try:
                version = tracking.alias_version(self.name, self.alias)
                if version is None:
                    raise ModelNotReadyError(f"{self.name!r} has no alias {self.alias!r} yet")
                if self._current is not None and self._current.version == version:
                    return False
                loaded = self._load(version)
            except FraudOpsError as exc:
                self.last_error, self.load_failures = str(exc), self.load_failures + 1
                log.warning("model: keeping %s: %s", self._describe(), exc)
                self._on_change(self.name, self.alias, None, True)
                return False
            previous, self._current, self.last_error = self._describe(), loaded, None
            log.info("model: %s -> version %d", previous, loaded.version)
            self._on_change(self.name, self.alias, loaded.version, False)
            return True

    def _describe(self) -> str:
        return f"version {self._current.version}" if self._current else "no model"

    def _load(self, version: int) -> LoadedModel:
        estimator, metadata = tracking.load_model(self.name, version)
        features = list(metadata.get("features", []))
        if features != self._expected:
            raise ModelNotReadyError(
                f"version {version} expects features {features}, the service computes "
                f"{self._expected}: refusing to serve it"
            )
        loaded = LoadedModel(
            estimator,
            self.name,
            version,
            self.alias,
            float(metadata.get("threshold", 0.5)),
            features,
            str(metadata.get("lineage.data_version", "unknown")),
            dt.datetime.now(dt.UTC),
            compile_model(estimator, len(features)),  # verified, or None (logged at WARNING)
            Reasoner(estimator, features),
        )
        warm = loaded.score(np.zeros((1, len(features))))  # first call pays lazy set-up costs
        if not np.isfinite(warm).all():
            raise ModelNotReadyError(f"version {version} returned a non-finite score on warm-up")
        return loaded


class Poller:
    """Checks the alias every `interval` seconds in a daemon thread until stopped."""

    def __init__(self, holder: ModelHolder, interval: float) -> None:
        self._holder, self._interval = holder, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-poller", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._holder.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
