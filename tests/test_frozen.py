"""Frozen strategy: encodes each split once, reuses cached features, fits any head."""

from __future__ import annotations

import numpy as np
import pytest

import textransfer
from textransfer.encoders.cache import FeatureCache, encode_cached
from textransfer.training import TrainingArgs


def _counting(encoder):
    calls = []
    original = encoder.encode

    def encode(inputs, batch_size=32):
        calls.append(len(inputs))
        return original(inputs, batch_size=batch_size)

    encoder.encode = encode
    return calls


def _strategy(tmp_path, val_fraction=0.1, **training):
    s = textransfer.create_strategy("frozen", val_fraction=val_fraction)
    s.cache = FeatureCache(tmp_path / "cache")
    s.training = TrainingArgs(**{"epochs": 40, "lr": 3e-2, "batch_size": 8, "patience": None, **training})
    return s


def test_encodes_once_per_split_then_hits_cache(tmp_path, toy_movies, toy_products):
    strategy = _strategy(tmp_path)
    enc = textransfer.create_encoder("tfidf")
    calls = _counting(enc)
    clf = strategy.fit(enc, textransfer.create_head("logreg"), toy_movies)
    encode_cached(clf.encoder, toy_products, strategy.cache)
    assert calls == [len(toy_movies), len(toy_products)]

    # Same config, same data: a second run reads every split from the cache.
    enc2 = textransfer.create_encoder("tfidf")
    calls2 = _counting(enc2)
    strategy2 = _strategy(tmp_path)
    clf2 = strategy2.fit(enc2, textransfer.create_head("logreg"), toy_movies)
    feats = encode_cached(clf2.encoder, toy_products, strategy2.cache)
    assert calls2 == []
    assert strategy2.cache.hits == 2
    np.testing.assert_array_equal(clf2.predict_proba_features(feats), clf.predict_proba(toy_products.texts))


def test_cache_key_changes_with_data_and_encoder(tmp_path, toy_movies, toy_products):
    a = textransfer.create_encoder("tfidf").fit(toy_movies.texts)
    b = textransfer.create_encoder("tfidf", max_features=10).fit(toy_movies.texts)
    keys = {FeatureCache.key(a, toy_movies), FeatureCache.key(b, toy_movies), FeatureCache.key(a, toy_products)}
    assert len(keys) == 3


def test_corrupt_cache_entry_is_recomputed(tmp_path, toy_movies):
    cache = FeatureCache(tmp_path)
    enc = textransfer.create_encoder("tfidf").fit(toy_movies.texts)
    key = FeatureCache.key(enc, toy_movies)
    (tmp_path / f"{key}.npy").write_bytes(b"not an array")
    feats = encode_cached(enc, toy_movies, cache)
    assert feats.shape[0] == len(toy_movies) and cache.misses == 1


@pytest.mark.parametrize("head", ["logreg", "linear", "mlp"])
def test_each_head_learns_the_toy_corpus(tmp_path, toy_movies, toy_products, head):
    # No held-out validation: train to convergence rather than restore the first best epoch.
    strategy = _strategy(tmp_path, val_fraction=0.0)
    clf = strategy.fit(textransfer.create_encoder("tfidf"), textransfer.create_head(head), toy_movies)
    assert clf.labels == ["negative", "positive"]
    acc = np.mean(np.array(clf.predict(toy_movies.texts)) == np.array(toy_movies.labels))
    assert acc == 1.0


def test_single_class_training_data_is_rejected(tmp_path, toy_movies):
    one = toy_movies.subset([i for i, lab in enumerate(toy_movies.labels) if lab == "positive"])
    with pytest.raises(ValueError, match="single class"):
        _strategy(tmp_path).fit(textransfer.create_encoder("tfidf"), textransfer.create_head("logreg"), one)


def test_unlabeled_training_data_is_rejected(tmp_path, toy_movies):
    with pytest.raises(ValueError, match="no labels"):
        _strategy(tmp_path).fit(
            textransfer.create_encoder("tfidf"), textransfer.create_head("logreg"), toy_movies.without_labels()
        )
