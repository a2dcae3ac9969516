"""Reasons with every score: each feature's contribution to the model's raw score (SHAP).

The one module that calls the `shap` package. For boosted trees (HistGradientBoosting,
XGBoost) the raw score is the log-odds, and the contributions plus the base value (the
model's expected raw score over its training data) add up to it exactly: they say how much
each feature moved this transaction's log-odds away from the average one, given the others.
They are not causes, and a feature with a large contribution is not what the transaction
"did wrong": it is where the model's trees split. For a random forest the raw score is the
fraud probability itself (a mean of trees is not additive in log-odds); for the logistic
regression it is the log-odds, with each standardised input's coefficient times its value.

Two methods:

- `exact`: TreeSHAP with path-dependent perturbation (Lundberg et al., 2020; what
  `shap.TreeExplainer` computes for trees), for every row. A few hundred microseconds a row.
- `approximate`: Saabas's attribution (`TreeExplainer(...).shap_values(approximate=True)`):
  each split on a transaction's path credits its feature with the change in the expected
  value. Also adds up to the raw score exactly and is about 90x cheaper, but it often names
  another top reason than the exact method (measured: docs/benchmarks.md, section models).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import FraudOpsError

log = logging.getLogger(__name__)

Method = Literal["exact", "approximate"]
Output = Literal["log_odds", "probability"]
METHODS: tuple[Method, ...] = ("exact", "approximate")
TOP = 3  # reasons given with a score: the largest contributions, by magnitude


class ReasonsUnavailableError(FraudOpsError):
    """The model is of a kind this module cannot explain."""


@dataclass(frozen=True)
class Contributions:
    """Per row, each feature's contribution to the raw score; `base` + the row's sum = the
    model's raw score of the row (`output`: log-odds, or the probability for forests)."""

    values: NDArray[np.float64]  # (rows, features)
    base: float
    output: Output
    method: Method


@dataclass(frozen=True)
class Reasons:
    """The `k` largest contributions of each row (by magnitude, signed), best first."""

    features: NDArray[np.str_]  # (rows, k)
    contributions: NDArray[np.float64]  # (rows, k)
    base: float
    output: Output
    method: Method


def _linear(model: Any) -> tuple[Any, Any] | None:
    """(scaler, logistic regression) of the project's linear pipeline, else None."""
    steps = getattr(model, "steps", None)
    if steps is None or len(steps) != 2:
        return None
    scaler, linear = steps[0][1], steps[1][1]
    if type(linear).__name__ != "LogisticRegression" or not hasattr(scaler, "scale_"):
        return None
    return scaler, linear


class Explainer:
    """Contributions of one fitted model's features: the linear model's in closed form,
    XGBoost's from XGBoost itself (`pred_contribs`), other trees' from `shap.TreeExplainer`.
    Built once per model; call it from one thread at a time."""

    def __init__(self, model: Any, n_features: int) -> None:
        self._model, self._n = model, n_features
        self.output: Output = "log_odds"
        linear = _linear(model)
        if linear is not None:
            scaler, fitted = linear
            self._kind, self._scaler, self._fitted = "linear", scaler, fitted
            # log-odds = intercept + sum(coef / scale * (x - mean)): base = the mean row's.
            self._coef, self._mean = fitted.coef_[0] / scaler.scale_, scaler.mean_
            self.base = float(fitted.intercept_[0])
        elif type(model).__name__ == "XGBClassifier":
            self._kind, self._booster = "xgboost", model.get_booster()
            self.base = float(self._xgb(np.zeros((1, n_features)), "bias")[0])
        else:
            import shap  # heavy (numba): only when such a model is explained

            try:
                self._tree = shap.TreeExplainer(model)
            except Exception as exc:  # shap raises its own InvalidModelError and others
                raise ReasonsUnavailableError(
                    f"reasons: {type(model).__name__} cannot be explained: {exc}"
                ) from exc
            self._kind = "shap"
            self.base = float(np.ravel(self._tree.expected_value)[-1])  # the positive class
            if type(model).__name__ == "RandomForestClassifier":  # a mean of probabilities
                self.output = "probability"

    def contributions(self, x: NDArray[np.float64], method: Method = "exact") -> Contributions:
        """Each row's contribution of each feature (the linear model's are exact whatever
        `method` says: they are also the cheapest)."""
        x = np.asarray(x, dtype=np.float64)
        if self._kind == "linear":
            return Contributions((x - self._mean) * self._coef, self.base, self.output, "exact")
        if self._kind == "xgboost":
            return Contributions(self._xgb(x, method), self.base, self.output, method)
        approximate = method == "approximate"
        raw = self._tree.shap_values(x, approximate=approximate, check_additivity=False)
        values = np.asarray(raw[..., -1] if np.ndim(raw) == 3 else raw, dtype=np.float64)
        return Contributions(values, self.base, self.output, method)

    def raw_score(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """The model's own raw score (log-odds, or the probability for forests): what base +
        contributions reproduce."""
        x = np.asarray(x, dtype=np.float64)
        if self.output == "probability":
            return np.asarray(self._model.predict_proba(x)[:, 1], dtype=np.float64)
        if self._kind == "linear":
            margin = self._fitted.decision_function(self._scaler.transform(x))
            return np.asarray(margin, dtype=np.float64)
        if self._kind == "xgboost":
            return self._xgb(x, "margin")
        return np.asarray(self._model.decision_function(x), dtype=np.float64)

    def _xgb(self, x: NDArray[np.float64], what: str) -> NDArray[np.float64]:
        """XGBoost's margin ("margin"), its bias ("bias") or its contributions ("exact":
        TreeSHAP, "approximate": Saabas), computed by XGBoost."""
        from xgboost import DMatrix

        data = DMatrix(x, feature_names=self._booster.feature_names)
        if what == "margin":
            return np.asarray(self._booster.predict(data, output_margin=True), dtype=np.float64)
        approx = what == "approximate"
        out = self._booster.predict(data, pred_contribs=True, approx_contribs=approx)
        return np.asarray(out[:, -1] if what == "bias" else out[:, :-1], dtype=np.float64)


def top(contrib: Contributions, names: list[str], k: int) -> Reasons:
    """The `k` largest contributions of each row by magnitude (ties: the earlier feature)."""
    k = min(k, contrib.values.shape[1])
    order = np.argsort(-np.abs(contrib.values), axis=1, kind="stable")[:, :k]
    labels = np.asarray(names)[order]
    values = np.take_along_axis(contrib.values, order, axis=1)
    return Reasons(labels, values, contrib.base, contrib.output, contrib.method)
