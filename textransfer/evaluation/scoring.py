"""Scoring one model on one labeled set, and pooling per-seed scores into one row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textransfer.evaluation.bootstrap import bootstrap_ci
from textransfer.evaluation.calibration import expected_calibration_error, reliability_bins
from textransfer.evaluation.metrics import classification_metrics, majority_baseline


@dataclass
class Scored:
    """Metrics of one (model, evaluation set, seed) plus what pooling over seeds needs.

    Attributes:
        metrics: JSON-ready metrics (``classification_metrics`` + ``ece`` + ``accuracy_ci``).
        y_true: ``(n,)`` int class ids.
        proba: ``(n, k)`` float32 class probabilities.
    """

    metrics: dict[str, Any]
    y_true: np.ndarray
    proba: np.ndarray


def score_predictions(
    y_true: np.ndarray,
    proba: np.ndarray,
    labels: Sequence[Any],
    n_boot: int = 1000,
    ece_bins: int = 15,
    seed: int = 0,
) -> Scored:
    """Accuracy, macro-F1, per-class P/R/F1, confusion matrix, ECE and bootstrap CIs.

    Args:
        y_true: ``(n,)`` int class ids.
        proba: ``(n, k)`` class probabilities, columns in ``labels`` order.
        labels: the label of each class id.
        n_boot: bootstrap resamples for the 95% intervals (0: no intervals).
        ece_bins: confidence bins of the ECE.
        seed: seeds the bootstrap.

    Returns:
        A :class:`Scored`.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(proba).argmax(axis=1)
    m = classification_metrics(y_true, pred, labels)
    m["majority_baseline"] = majority_baseline(y_true)
    m["ece"] = expected_calibration_error(proba, y_true, ece_bins)
    if n_boot:
        for metric in ("accuracy", "macro_f1"):
            ci = bootstrap_ci([(y_true, pred)], metric, len(labels), n_boot=n_boot, seed=seed)
            m[f"{metric}_ci95"] = [ci["low"], ci["high"]]
    return Scored(m, y_true, np.asarray(proba, dtype=np.float32))


def pool_seeds(scores: Sequence[Scored], labels: Sequence[Any], n_boot: int = 1000, ece_bins: int = 15) -> dict[str, Any]:
    """Mean +- std over seeds, a bootstrap CI of the seed mean, and pooled diagnostics.

    Args:
        scores: one :class:`Scored` per seed (same evaluation domain).
        labels: the label of each class id.
        n_boot: bootstrap resamples (0: no intervals).
        ece_bins: confidence bins of the pooled reliability diagram.

    Returns:
        ``{"n_seeds", "accuracy": {"mean", "std", "ci95"}, "macro_f1": {...}, "ece": {...},
        "per_class": {label: {"precision", "recall"}} (seed means), "confusion_matrix" (summed
        over seeds), "reliability" (bins of all seeds' rows), "majority_baseline"}``.
    """
    out: dict[str, Any] = {"n_seeds": len(scores), "n": int(np.mean([len(s.y_true) for s in scores]))}
    for key in ("accuracy", "macro_f1", "ece"):
        vals = np.array([s.metrics[key] for s in scores], dtype=np.float64)
        out[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
    if n_boot:
        groups = [(s.y_true, s.proba.argmax(axis=1)) for s in scores]
        for key in ("accuracy", "macro_f1"):
            ci = bootstrap_ci(groups, key, len(labels), n_boot=n_boot)  # type: ignore[arg-type]
            out[key]["ci95"] = [ci["low"], ci["high"]]
    out["per_class"] = {
        str(lab): {
            m: float(np.mean([s.metrics["per_class"][str(lab)][m] for s in scores])) for m in ("precision", "recall")
        }
        for lab in labels
    }
    out["confusion_matrix"] = np.sum([s.metrics["confusion_matrix"] for s in scores], axis=0).astype(int).tolist()
    out["labels"] = [str(lab) for lab in labels]
    out["majority_baseline"] = float(np.mean([s.metrics["majority_baseline"] for s in scores]))
    out["reliability"] = reliability_bins(
        np.concatenate([s.proba for s in scores]), np.concatenate([s.y_true for s in scores]), ece_bins
    )
    return out


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "std"}`` (sample std, 0 for a single value) of a list of numbers."""
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}
