"""Evaluation plots as PNG files: curves, score histograms, importances, slices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from pipelines import schema


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def write_all(
    scored: pd.DataFrame, importances: pd.DataFrame, slices: pd.DataFrame, out: Path
) -> list[Path]:
    """Write every plot under `out`; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    y, s = scored[schema.TX_FRAUD].to_numpy(), scored["score"].to_numpy()
    plt = _pyplot()
    paths = []
    fig, (ax_pr, ax_roc) = plt.subplots(1, 2, figsize=(10, 4))
    precision, recall, _ = precision_recall_curve(y, s)
    ax_pr.plot(recall, precision)
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall (test block)")
    fpr, tpr, _ = roc_curve(y, s)
    ax_roc.plot(fpr, tpr)
    ax_roc.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax_roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC")
    paths.append(_save(plt, fig, out / "curves.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist(s[y == 0], bins=bins, alpha=0.6, density=True, label="legitimate")
    ax.hist(s[y == 1], bins=bins, alpha=0.6, density=True, label="fraud")
    ax.set(xlabel="score", ylabel="density", yscale="log", title="Score distribution")
    ax.legend()
    paths.append(_save(plt, fig, out / "score_histogram.png"))
    fig, ax = plt.subplots(figsize=(7, 5))
    top = importances.iloc[::-1]
    ax.barh(top["feature"], top["importance_mean"], xerr=top["importance_std"])
    ax.set(xlabel="drop in average precision", title="Permutation importance")
    paths.append(_save(plt, fig, out / "importances.png"))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(slices["slice"] + "=" + slices["value"], slices["average_precision"].fillna(0))
    ax.set(ylabel="average precision", title="Average precision per slice")
    ax.tick_params(axis="x", rotation=60)
    paths.append(_save(plt, fig, out / "slices.png"))
    return paths


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
