"""Integration tests on the real packaged resources, on small slices (marked slow)."""

from __future__ import annotations

import numpy as np
import pytest

import textransfer
from textransfer.data import load, stratified_split

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slices():
    movies = load({"source": "movies", "limit": 600})
    products = load({"source": "products", "limit": 300})
    train, test = stratified_split(movies, 0.25, seed=0)
    return train, test, products


def _accuracy(clf, data) -> float:
    return float(np.mean(np.array(clf.predict(data.texts)) == np.array(data.labels)))


def test_packaged_glove_is_loaded_once_and_whole():
    from textransfer.encoders import static

    enc = textransfer.create_encoder("static", vectors="glove-6b-50d")
    enc.encode(["the film"])
    kv = next(kv for kv, _ in static._VECTORS.values() if kv.vector_size == 50)
    assert kv.vectors.shape == (400000, 50)
    assert kv.key_to_index["the"] == 0  # frequency order kept: SIF weights rely on it
    assert np.abs(kv.vectors).sum(axis=1).min() > 0  # no zero rows


def test_glove_mean_pooling_is_bit_identical_to_gensim_on_long_reviews():
    """The longest movie reviews (30+ tokens): float32 rounding depends on the summation order,
    so only gensim's order gives its vectors exactly (weights of 1/n differ by up to 3.6e-6)."""
    from textransfer.encoders.static import tokenize

    enc = textransfer.create_encoder("static", vectors="glove-6b-50d", pooling="mean")
    kv = enc.keyed_vectors
    texts = sorted(load("movies").texts, key=len)[-300:]  # the longest
    tokens = [tokenize(t) for t in texts]
    assert min(map(len, tokens)) > 30
    ref = np.stack([kv.get_mean_vector(t, pre_normalize=False) for t in tokens])
    np.testing.assert_array_equal(enc.pool_tokens(tokens), ref)


@pytest.mark.parametrize(
    ("encoder", "min_in", "min_cross"),
    [
        ({"name": "static", "vectors": "glove-6b-50d", "pooling": "mean"}, 0.60, 0.55),
        ({"name": "sentence", "model": "all-MiniLM-L6-v2"}, 0.70, 0.68),
    ],
)
def test_frozen_logreg_transfers_on_real_resources(slices, tmp_path, encoder, min_in, min_cross):
    train, test, products = slices
    enc = textransfer.create_encoder(encoder.pop("name"), **encoder)
    clf = textransfer.create_strategy("frozen").fit(enc, textransfer.create_head("logreg"), train)
    in_acc, cross_acc = _accuracy(clf, test), _accuracy(clf, products)
    # 450 training sentences: well above chance, below the full-data figures (0.71 / 0.80).
    assert in_acc >= min_in and cross_acc >= min_cross, (in_acc, cross_acc)
    clf.save(tmp_path / "m")
    np.testing.assert_allclose(textransfer.load(tmp_path / "m").predict_proba(test.texts[:20]),
                               clf.predict_proba(test.texts[:20]), atol=1e-6)
