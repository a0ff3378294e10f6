"""Building blocks shared by the curve and layer runs: the feature cache of a run, the target
split, training one setup on one sample, scoring a classifier."""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from textransfer.classifier import Classifier
from textransfer.config import SetupConfig
from textransfer.data import LabeledTexts, stratified_split
from textransfer.encoders.base import Encoder
from textransfer.encoders.cache import FeatureCache, encode_cached
from textransfer.evaluation.metrics import classification_metrics
from textransfer.runner import build_components

logger = logging.getLogger("textransfer.analyses")


@contextlib.contextmanager
def run_cache(cache_dir: str | None) -> Iterator[FeatureCache]:
    """The configured feature cache; with ``cache_dir: null`` a temporary one for this run only,
    so the frozen features of a domain are still computed once, not once per budget."""
    if cache_dir:
        yield FeatureCache(Path(cache_dir).expanduser())
        return
    with tempfile.TemporaryDirectory(prefix="textransfer-features-") as tmp:
        yield FeatureCache(tmp)


def split_target(
    target: LabeledTexts, test_size: float, seed: int
) -> tuple[LabeledTexts, LabeledTexts]:
    """``(pool, test)``: the labeled pool budgets are drawn from and the held-out test split."""
    if target.labels is None:
        raise ValueError(
            f"target {target.domain!r} has no labels: set `label_column` in its data config"
        )
    try:
        pool, test = stratified_split(target, test_size, seed=seed)
    except ValueError as exc:
        raise ValueError(
            f"target {target.domain!r} is too small for test_size={test_size}: {exc}"
        ) from None
    test.domain = pool.domain
    return pool, test


def score(
    clf: Classifier, data: LabeledTexts, cache: FeatureCache | None, batch_size: int
) -> dict[str, Any]:
    """Accuracy and macro-F1 of ``clf`` on labeled ``data``; trained encoders bypass the cache
    (their features are used once)."""
    trained = bool(getattr(clf.encoder, "weights_modified", False))
    feats = encode_cached(clf.encoder, data, None if trained else cache, batch_size)
    pred = clf.predict_proba_features(feats).argmax(axis=1)
    m = classification_metrics(clf.label_map.encode(data.labels or []), pred, clf.labels)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}


def covers(clf: Classifier, data: LabeledTexts) -> bool:
    """True when every label of ``data`` is one of ``clf``'s classes."""
    return {str(lab) for lab in data.labels or []} <= {str(lab) for lab in clf.labels}


def fit_setup(
    setup: SetupConfig,
    train: LabeledTexts,
    seed: int,
    cache: FeatureCache | None,
    batch_size: int,
    encoder: Encoder | None = None,
    min_steps: int | None = None,
    strategy: Any = None,
    warm: Callable[[Encoder], None] | None = None,
) -> tuple[Classifier, dict[str, Any]]:
    """Trains a fresh copy of ``setup`` on ``train``.

    Args:
        encoder: start from this encoder (e.g. a source-trained one) instead of a fresh one.
        min_steps: raise ``training.epochs`` so that at least this many optimiser steps run.
        strategy: use this strategy object instead of the setup's (its training settings are
            set from the setup).
        warm: called with the encoder before a frozen-feature strategy (one with ``features``)
            fits, e.g. to fill the cache from one encoding of the whole domain.
    Returns:
        ``(classifier, {"train_rows", "fit_seconds", ...})``.
    """
    fresh, head, own = build_components(setup, seed, cache, batch_size)
    if strategy is not None:
        strategy.cache, strategy.training, strategy.batch_size = (
            own.cache,
            own.training,
            own.batch_size,
        )
    else:
        strategy = own
    encoder = encoder or fresh
    if min_steps:
        per_epoch = max(1, math.ceil(len(train) / strategy.training.batch_size))
        epochs = max(strategy.training.epochs, math.ceil(min_steps / per_epoch))
        strategy.training = replace(strategy.training, epochs=epochs)
    if warm is not None and hasattr(strategy, "features"):
        warm(encoder)
    t0 = time.perf_counter()
    clf = strategy.fit(encoder, head, train)
    info = {
        k: v for k, v in (getattr(strategy, "last_fit_info", {}) or {}).items() if k != "history"
    }
    info.setdefault("train_rows", len(train))
    info["fit_seconds"] = round(time.perf_counter() - t0, 2)
    info["epochs"] = strategy.training.epochs
    return clf, info


def ids_json(ids: list[Any]) -> list[Any]:
    """Row ids as JSON values (numpy ints -> int)."""
    return [i.item() if isinstance(i, np.generic) else i for i in ids]
