"""Calibration: expected calibration error (ECE) and the bins of a reliability diagram.

Confidence is the top-class probability; a well-calibrated model is right 80% of the time when it
says 0.8. Under domain shift models tend to stay confident while their accuracy drops, which is
why the cross-domain report shows ECE on both domains.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def reliability_bins(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> dict[str, Any]:
    """Top-class confidence binned into ``n_bins`` equal-width bins over [0, 1].

    Args:
        proba: ``(n, k)`` float class probabilities (rows sum to 1).
        y_true: ``(n,)`` int class ids.
        n_bins: number of equal-width confidence bins.

    Returns:
        ``{"edges": (n_bins + 1,), "count": (n_bins,), "confidence": (n_bins,),
        "accuracy": (n_bins,)}`` as lists; empty bins hold count 0 and None for the means.

    Example:
        >>> reliability_bins(np.array([[0.9, 0.1]]), np.array([0]), n_bins=2)["accuracy"]
        [None, 1.0]
    """
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true)
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise ValueError(f"proba must be (n, k) with n = len(y_true) = {len(y_true)}, got shape {proba.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds confidences in (edges[i], edges[i+1]]; a confidence of exactly 0 goes to bin 0.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf, mean_acc = conf_sum / count, acc_sum / count
    return {
        "edges": edges.tolist(),
        "count": count.astype(int).tolist(),
        "confidence": [None if c == 0 else float(v) for c, v in zip(count, mean_conf, strict=True)],
        "accuracy": [None if c == 0 else float(v) for c, v in zip(count, mean_acc, strict=True)],
    }


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """ECE = sum over bins of (bin size / n) * |accuracy(bin) - mean confidence(bin)|.

    Args:
        proba: ``(n, k)`` class probabilities.
        y_true: ``(n,)`` int class ids.
        n_bins: equal-width confidence bins (15, as in Guo et al. 2017).

    Returns:
        ECE in [0, 1].

    Example:
        >>> expected_calibration_error(np.array([[0.9, 0.1], [0.9, 0.1]]), np.array([0, 1]), n_bins=10)
        0.4
    """
    bins = reliability_bins(proba, y_true, n_bins)
    n = sum(bins["count"])
    if n == 0:
        raise ValueError("cannot compute ECE on an empty evaluation set")
    total = 0.0
    for c, conf, acc in zip(bins["count"], bins["confidence"], bins["accuracy"], strict=True):
        if c:
            total += c / n * abs(acc - conf)
    return round(total, 12)
