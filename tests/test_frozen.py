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


@pytest.mark.parametrize(
    ("head_name", "lr", "expected"),
    [("linear", None, 1e-2), ("mlp", None, None), ("linear", 3e-4, 3e-4)],
)
def test_a_head_trains_at_its_default_lr_unless_training_sets_one(monkeypatch, head_name, lr, expected):
    """The linear head on frozen features defaults to lr 1e-2 (at the loop's 1e-3 it stopped short
    of logistic regression); the MLP keeps the loop's default (None here); an explicit lr wins."""
    import textransfer.training.loop as loop
    from textransfer.heads import create_head
    from textransfer.strategies.frozen import fit_torch_head_on_arrays

    seen = {}
    real = loop.train

    def spy(module, train_loader, val_loader, args):
        seen["lr"] = args.lr
        return real(module, train_loader, val_loader, args)

    monkeypatch.setattr(loop, "train", spy)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype(np.float32), np.arange(40) % 2
    head = create_head(head_name)
    head.build(4, 2)
    args = TrainingArgs(epochs=1, lr=lr, progress=False)
    fit_torch_head_on_arrays(head, x, y, None, None, args)
    assert seen["lr"] == expected
    assert args.lr == lr  # the caller's settings are not changed


@pytest.mark.parametrize("metric", [None, "accuracy"])
def test_a_head_on_frozen_features_keeps_its_lowest_validation_loss_epoch_unless_told_otherwise(metric):
    """Unset, the head's best epoch is the one of the lowest validation loss (accuracy on a small
    validation split ties across epochs and keeps the earliest); an explicit metric wins."""
    from textransfer.heads import create_head
    from textransfer.strategies.frozen import fit_torch_head_on_arrays

    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    x = (rng.normal(size=(60, 8)) + 0.8 * y[:, None]).astype(np.float32)
    x_val, y_val = x[:6], y[:6]  # a small validation split: its accuracy plateaus early
    head = create_head("linear", dropout=0.0)
    head.build(8, 2)
    args = TrainingArgs(epochs=12, lr=3e-3, batch_size=8, patience=None, metric=metric, progress=False)
    info = fit_torch_head_on_arrays(head, x[6:], y[6:], x_val, y_val, args)
    history = info["history"]
    if metric is None:
        losses = [row["val_loss"] for row in history]
        assert info["best_epoch"] == int(np.argmin(losses)) + 1
    else:
        accs = [row["val_accuracy"] for row in history]
        assert info["best_epoch"] == int(np.argmax(accs)) + 1  # the first epoch at the best accuracy
    # The two rules disagree on this data (else the test could not tell them apart).
    first_best_acc = int(np.argmax([row["val_accuracy"] for row in history])) + 1
    lowest_loss = int(np.argmin([row["val_loss"] for row in history])) + 1
    assert first_best_acc != lowest_loss
    assert args.metric == metric  # the caller's settings are not changed
