"""CORAL: correlation alignment of frozen features (Sun, Feng & Saenko 2016, "Return of
Frustratingly Easy Domain Adaptation", Algorithm 1).

Source features are whitened with their own covariance and re-coloured with the target's, both
regularised with ``+ reg * I``; with ``align_mean`` (the default) they are also moved from the
source mean to the target mean, so both first and second moments match. The head is trained on
the transformed source features and, at predict time, sees target features as they are (the
classifier saved is a plain frozen-encoder classifier: no transform is stored).

Why the mean: Algorithm 1 matches covariances only. On movie -> product sentences the shift
between the two domains' feature means is what hurts a linear head most (GloVe mean vectors:
source-only 0.60, covariance alone 0.60, covariance + mean 0.69 product accuracy over three
seeds; see the README's cross-domain section); ``align_mean: false`` gives Algorithm 1 verbatim.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from textransfer.data.labeled import LabeledTexts
from textransfer.encoders.base import Encoder, FittableEncoder
from textransfer.heads.base import Head
from textransfer.strategies.base import (
    FitContext,
    FitResult,
    register_strategy,
    require_target_texts,
)
from textransfer.strategies.frozen import FrozenStrategy

logger = logging.getLogger("textransfer.strategies")


def _sym_power(cov: np.ndarray, power: float) -> np.ndarray:
    """``cov ** power`` of a symmetric positive definite ``(d, d)`` matrix via eigh."""
    w, v = np.linalg.eigh(cov)
    w = np.clip(w, 1e-12, None)
    return (v * w**power) @ v.T


def coral_transform(
    source: np.ndarray, target: np.ndarray, reg: float = 1.0, standardize: bool = False, align_mean: bool = True
) -> Any:
    """The CORAL map of source features: ``x -> (x - ms) Cs^-1/2 Ct^1/2 + mt`` (Cs, Ct regularised).

    Args:
        source: ``(n_s, d)`` source features.
        target: ``(n_t, d)`` target features (labels are never needed).
        reg: ``lambda`` of ``C = cov + lambda I`` (the paper's ``+ eye``).
        standardize: compute the covariances of features z-scored with the source standard
            deviation (one scaling for both domains, undone at the end), so that ``+ reg * I``
            weighs the same against every dimension; without it ``+ I`` dominates encoders whose
            features have a small variance (MiniLM: ~0.01 per dim) and the covariance part
            changes little.
        align_mean: centre the source features and add the target mean (``ms``, ``mt`` above);
            False keeps the source mean (Algorithm 1 of the paper).

    Returns:
        A function ``(n, d) -> (n, d)`` float32 applying the map to source-domain features.

    Example:
        >>> f = coral_transform(np.random.randn(100, 3), 5 * np.random.randn(100, 3), reg=1e-6)
        >>> f(np.random.randn(10, 3)).shape
        (10, 3)
    """
    xs, xt = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if xs.ndim != 2 or xt.ndim != 2 or xs.shape[1] != xt.shape[1]:
        raise ValueError(f"coral: source and target features must be (n, d) with one d, got {xs.shape} and {xt.shape}")
    if len(xs) < 2 or len(xt) < 2:
        raise ValueError(f"coral: covariances need at least 2 rows per domain, got {len(xs)} source and {len(xt)} target")
    ms, mt = xs.mean(axis=0), xt.mean(axis=0)
    sd = np.maximum(xs.std(axis=0), 1e-8) if standardize else np.ones(xs.shape[1])
    eye = np.eye(xs.shape[1])
    cs = np.cov(xs / sd, rowvar=False) + reg * eye
    ct = np.cov(xt / sd, rowvar=False) + reg * eye
    a = _sym_power(cs, -0.5) @ _sym_power(ct, 0.5)
    shift = mt if align_mean else ms

    def apply(x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - ms) / sd
        return ((z @ a) * sd + shift).astype(np.float32)

    return apply


@register_strategy("coral")
class CoralStrategy(FrozenStrategy):
    """Frozen encoder; the head learns on source features re-coloured to the target covariance.

    Needs ``target_unlabeled`` (target texts, labels unused). Works with any head; fittable
    encoders (TF-IDF) are fitted on the source training texts as in ``frozen``.

    Args:
        reg: covariance regulariser ``lambda`` (``C + lambda I``; 1.0 as in the paper).
        standardize: align in source-standardised coordinates (see :func:`coral_transform`).
        align_mean: also move the source features to the target mean (False: Algorithm 1).
        max_dim: refuse features wider than this (the covariance is ``dim x dim``).
        val_fraction: as in ``frozen``, for torch heads.

    Example:
        >>> clf = CoralStrategy().fit(enc, create_head("logreg"), movies, target_unlabeled=products.without_labels())  # doctest: +SKIP
    """

    needs_target_texts = True
    source_only = False  # FrozenStrategy's, undone: CORAL reads the target texts

    def __init__(
        self, reg: float = 1.0, standardize: bool = False, align_mean: bool = True, max_dim: int = 4096,
        val_fraction: float = 0.1,
    ) -> None:
        super().__init__(val_fraction=val_fraction)
        if not reg > 0:
            raise ValueError(f"coral: reg must be > 0 (it keeps the covariances invertible), got {reg}")
        self.reg = float(reg)
        self.standardize = bool(standardize)
        self.align_mean = bool(align_mean)
        self.max_dim = int(max_dim)
        self._transform: Any = None

    def config(self) -> dict[str, Any]:
        return {"reg": self.reg, "standardize": self.standardize, "align_mean": self.align_mean,
                "max_dim": self.max_dim, "val_fraction": self.val_fraction}

    def features(self, encoder: Encoder, data: LabeledTexts, context: FitContext | None = None) -> np.ndarray:
        """Source features, re-coloured while :meth:`fit` runs (train and validation rows)."""
        x = super().features(encoder, data, context)
        return self._transform(x) if self._transform is not None else x

    def fit_with_context(
        self,
        encoder: Encoder,
        head: Head,
        train: LabeledTexts,
        *,
        val: LabeledTexts | None = None,
        target_unlabeled: LabeledTexts | None = None,
        context: FitContext | None = None,
    ) -> FitResult:
        ctx = self.context(context)
        target_unlabeled = require_target_texts(self.name, target_unlabeled, min_rows=2)
        self.label_map_for(train)
        if isinstance(encoder, FittableEncoder):
            encoder.fit(train.texts)
        if encoder.dim > self.max_dim:
            raise ValueError(
                f"coral: {encoder.name} features have {encoder.dim} dimensions (> max_dim={self.max_dim}); "
                "the covariance would be too large: lower the encoder's size (e.g. tfidf max_features) or raise max_dim"
            )
        xs = super().features(encoder, train, ctx)
        xt = super().features(encoder, target_unlabeled.without_labels(), ctx)
        self._transform = coral_transform(xs, xt, self.reg, self.standardize, self.align_mean)
        try:
            result = super().fit_with_context(encoder, head, train, val=val, context=ctx)
        finally:
            self._transform = None
        result.info["target_rows"] = len(target_unlabeled)
        return result
