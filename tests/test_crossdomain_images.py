"""Cross-domain feature sharing works for image inputs (arrays), not only texts."""

from __future__ import annotations

import numpy as np

import textransfer
from textransfer.data.labeled import LabeledTexts
from textransfer.encoders.cache import FeatureCache
from textransfer.experiments._kernel import FeatureStore, _same_input


def test_same_input_compares_arrays_by_value():
    a = np.arange(4, dtype=np.uint8).reshape(2, 2)
    assert _same_input(a, a.copy()) and not _same_input(a, a + 1)
    assert _same_input("x", "x") and not _same_input("x", "y")


def test_feature_store_fills_split_caches_from_image_domain(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size=(8, 8), dtype=np.uint8) for _ in range(12)]
    full = LabeledTexts(images, [i % 2 for i in range(12)], domain="imgs")
    # A split holding equal copies (not the same objects) of some images.
    part = LabeledTexts([images[i].copy() for i in (1, 4, 7)], [1, 0, 1], domain="imgs", ids=[1, 4, 7])
    enc = textransfer.create_encoder("cnn", image_size=8)
    cache = FeatureCache(tmp_path)
    FeatureStore(cache, batch_size=4).warm(enc, full, part)
    cached = cache.get(FeatureCache.key(enc, part))
    assert cached is not None
    np.testing.assert_allclose(cached, enc.encode(part.texts), atol=1e-5)
