"""Classification metrics, as plain JSON-ready dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        y_true: ``(n,)`` int class ids.
        y_pred: ``(n,)`` int class ids.
        labels: label of each class id (for the per-class keys).

    Returns:
        ``{"n", "accuracy", "macro_f1", "per_class": {label: {...}}, "confusion_matrix": [[...]],
        "labels"}``; confusion rows are true classes, columns predicted ones.

    Example:
        >>> classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), ["neg", "pos"])["accuracy"]
        0.6666666666666666
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    ids = list(range(len(labels)))
    if len(y_true) == 0:
        raise ValueError("cannot compute metrics on an empty evaluation set")
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()),
        "macro_f1": float(np.mean(f)),
        "per_class": {
            str(lab): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": list(labels),
    }


def majority_baseline(y_true: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class of ``y_true``."""
    counts = np.bincount(np.asarray(y_true))
    return float(counts.max() / counts.sum()) if counts.sum() else 0.0
