"""Contract tests over the registries, the way timm runs its tests over ``list_models()``: every
registered strategy fits the tiny two-domain fixture, saves, loads and predicts the same; every
registered dataset loads with a stable fingerprint. A new strategy or dataset is covered by
registering it; one that needs settings to run in seconds on the fixtures adds them to ``_SMALL``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import textransfer
from textransfer.data import load
from textransfer.data.labeled import LabeledTexts
from textransfer.strategies.base import create_strategy

# Settings that keep each strategy to seconds on the fixtures (the rest run with their defaults).
_SMALL: dict[str, dict[str, Any]] = {
    "dapt": {"mlm_steps": 2},
    "udalm": {"mlm_steps": 2},
    "self_train": {"rounds": 1, "min_confidence": 0.0},
    "zero_shot": {"labels": {"positive": "good great wonderful", "negative": "bad awful terrible"}},
}
_TRAINING = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "patience": None}


@pytest.mark.parametrize("name", textransfer.list_strategies())
def test_every_strategy_fits_saves_loads_and_predicts_the_same(
    name: str, tiny_bert_dir: Path, tiny_sentence_dir: Path, toy_movies: LabeledTexts,
    toy_products: LabeledTexts, tmp_path: Path,
) -> None:
    strategy = create_strategy(name, training=_TRAINING, **_SMALL.get(name, {}))
    # What the strategy declares picks its encoder and head: a trainable transformer for those
    # that train the encoder, a frozen sentence encoder for the rest.
    if strategy.trains_encoder:
        encoder = textransfer.create_encoder("transformer", model=str(tiny_bert_dir), max_length=16)
        head = "linear"
    else:
        encoder = textransfer.create_encoder("sentence", model=str(tiny_sentence_dir))
        head = strategy.default_head
    target = toy_products.without_labels() if strategy.needs_target_texts else None
    clf = strategy.fit(encoder, textransfer.create_head(head), toy_movies, target_unlabeled=target)
    texts = list(toy_products.texts[:6])
    proba = clf.predict_proba(texts)
    assert proba.shape == (6, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    clf.save(tmp_path / name)
    loaded = textransfer.load(tmp_path / name)
    np.testing.assert_allclose(loaded.predict_proba(texts), proba, atol=1e-5)
    assert list(loaded.predict(texts)) == list(clf.predict(texts))


@pytest.mark.parametrize("name", textransfer.list_datasets())
def test_every_dataset_loads_with_a_stable_fingerprint(name: str) -> None:
    first = load({"source": name, "limit": 40})
    second = load({"source": name, "limit": 40})
    assert len(first) == 40 and set(first.labels or []) and first.fingerprint() == second.fingerprint()
