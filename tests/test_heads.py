"""Contract tests over every registered head."""

from __future__ import annotations

import numpy as np
import pytest

import textransfer
from textransfer.heads.base import ArrayHead, TorchHead


def _separable(n: int = 60, dim: int = 6, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, dim)).astype(np.float32) * 0.1
    x[np.arange(n), y] += 3.0
    return x, y


def _fit(head, x, y, k):
    head.build(x.shape[1], k)
    if isinstance(head, ArrayHead):
        head.fit(x, y, num_classes=k)
    else:
        from textransfer.strategies.base import create_strategy
        from textransfer.strategies.frozen import fit_torch_head_on_arrays
        from textransfer.training import TrainingArgs

        strategy = create_strategy("frozen")
        strategy.training = TrainingArgs(epochs=40, lr=1e-2, batch_size=16, patience=None)
        fit_torch_head_on_arrays(head, x, y, None, None, strategy.training)


@pytest.mark.parametrize("name", textransfer.list_heads())
def test_head_contract(name, tmp_path):
    head = textransfer.create_head(name)
    assert isinstance(head, (ArrayHead, TorchHead))
    x, y = _separable()
    _fit(head, x, y, 3)
    proba = head.predict_proba(x)
    assert proba.shape == (60, 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba.argmax(1) == y).mean() == 1.0  # separable data is learned
    head.save(tmp_path / "head")
    assert not list((tmp_path / "head").glob("*.pkl"))
    loaded = type(head).load(tmp_path / "head")
    np.testing.assert_array_equal(loaded.predict_proba(x), proba)


def test_logreg_binary_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    x, y = _separable(k=2)
    x += np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    head = textransfer.create_head("logreg", C=0.5)
    head.fit(x, y)
    ref = LogisticRegression(C=0.5, max_iter=2000).fit(x.astype(np.float64), y)
    np.testing.assert_allclose(head.predict_proba(x), ref.predict_proba(x), atol=1e-5)


def test_logreg_single_class_is_a_clear_error():
    x, _ = _separable()
    with pytest.raises(ValueError, match="single class"):
        textransfer.create_head("logreg").fit(x, np.zeros(len(x), dtype=int))


def test_head_rejects_bad_params():
    with pytest.raises(ValueError, match="dropout"):
        textransfer.create_head("linear", dropout=1.5)
    with pytest.raises(ValueError, match="C must be > 0"):
        textransfer.create_head("logreg", C=0)
