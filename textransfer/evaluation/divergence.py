"""Proxy A-distance between two domains (Ben-David et al. 2007; Ganin et al. 2016, sec. 5.1.3).

A linear classifier learns to tell source features from target features; its error ``err`` on
held-out rows gives ``PAD = 2 (1 - 2 err)``: about 0 when the domains are indistinguishable,
2 when they are perfectly separable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Rows per domain below which no proxy A-distance is measured (half of them train the domain
# classifier, the other half measure its error).
A_DISTANCE_MIN_ROWS = 4


def proxy_a_distance(
    source: np.ndarray,
    target: np.ndarray,
    seed: int = 0,
    test_size: float = 0.5,
    max_rows: int | None = 2000,
    C: float = 1.0,
) -> dict[str, Any]:
    """Proxy A-distance from a linear domain classifier evaluated on held-out rows.

    Both domains are subsampled to the same size (so chance error is 0.5), split into a training
    half and a held-out half, features are standardised on the training half, and a logistic
    regression separates the domains.

    Args:
        source: ``(n_s, dim)`` float features of source rows.
        target: ``(n_t, dim)`` float features of target rows.
        seed: seeds subsampling, the split and the classifier.
        test_size: fraction held out to measure the domain classifier's error.
        max_rows: at most this many rows per domain (None: all).
        C: inverse regularisation strength of the logistic regression.

    Returns:
        ``{"a_distance", "domain_error", "n_per_domain"}``. The value is not clipped: a
        slightly negative number means "indistinguishable" (held-out error just above 0.5).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> proxy_a_distance(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 10)["a_distance"]
        2.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"source and target must be (n, dim) with the same dim, got {source.shape} and {target.shape}")
    n = min(len(source), len(target), max_rows or len(source) + len(target))
    if n < A_DISTANCE_MIN_ROWS:
        raise ValueError(f"proxy A-distance needs at least {A_DISTANCE_MIN_ROWS} rows per domain, "
                         f"got {len(source)} and {len(target)}")
    rng = np.random.default_rng(seed)
    xs = source[rng.choice(len(source), n, replace=False)]
    xt = target[rng.choice(len(target), n, replace=False)]
    x = np.concatenate([xs, xt])
    d = np.concatenate([np.zeros(n, dtype=int), np.ones(n, dtype=int)])
    x_tr, x_te, d_tr, d_te = train_test_split(x, d, test_size=test_size, stratify=d, random_state=seed)
    scaler = StandardScaler().fit(x_tr)
    clf = LogisticRegression(C=C, max_iter=1000, random_state=seed).fit(scaler.transform(x_tr), d_tr)
    err = float((clf.predict(scaler.transform(x_te)) != d_te).mean())
    return {"a_distance": 2.0 * (1.0 - 2.0 * err), "domain_error": err, "n_per_domain": int(n)}
