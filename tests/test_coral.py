"""CORAL: the re-coloured source covariance matches the target's; the strategy trains on it."""

from __future__ import annotations

import numpy as np
import pytest

from textransfer.data.labeled import LabeledTexts
from textransfer.encoders import create_encoder
from textransfer.heads.base import create_head
from textransfer.strategies.base import create_strategy
from textransfer.strategies.coral import coral_transform


def _gaussians(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(4000, 4)) @ rng.normal(size=(4, 4))
    xt = rng.normal(size=(4000, 4)) @ (3 * rng.normal(size=(4, 4))) + 2.0
    return xs, xt


@pytest.mark.parametrize("standardize", [False, True])
def test_aligned_covariance_matches_target(standardize: bool) -> None:
    xs, xt = _gaussians()
    aligned = coral_transform(xs, xt, reg=1e-8, standardize=standardize)(xs)
    cov_a, cov_t = np.cov(aligned, rowvar=False), np.cov(xt, rowvar=False)
    assert np.abs(cov_a - cov_t).max() < 1e-4 * np.abs(cov_t).max()
    assert np.abs(np.cov(xs, rowvar=False) - cov_t).max() > 1.0  # it was far off before


def test_paper_regulariser_identity() -> None:
    # With C = cov + I: cov(aligned) = Ct^1/2 (I - Cs^-1) Ct^1/2, i.e. Ct - Ct^1/2 Cs^-1 Ct^1/2.
    xs, xt = _gaussians(1)
    aligned = coral_transform(xs, xt, reg=1.0, standardize=False)(xs)
    cs, ct = np.cov(xs, rowvar=False) + np.eye(4), np.cov(xt, rowvar=False) + np.eye(4)
    w, v = np.linalg.eigh(ct)
    ct_half = (v * np.sqrt(w)) @ v.T
    expected = ct_half @ (np.eye(4) - np.linalg.inv(cs)) @ ct_half
    np.testing.assert_allclose(np.cov(aligned, rowvar=False), expected, rtol=1e-6, atol=1e-6)


def test_coral_strategy_fits_and_predicts(toy_movies: LabeledTexts, toy_products: LabeledTexts) -> None:
    strategy = create_strategy("coral")
    enc = create_encoder("tfidf", min_df=1)
    clf = strategy.fit(enc, create_head("logreg"), toy_movies, target_unlabeled=toy_products.without_labels())
    assert clf.strategy["name"] == "coral"
    assert strategy.last_fit_info["target_rows"] == len(toy_products)
    assert strategy._transform is None  # the transform lives only during fit
    preds = clf.predict(toy_movies.texts)
    assert np.mean([p == t for p, t in zip(preds, toy_movies.labels or [], strict=True)]) > 0.9


def test_coral_needs_target_texts(toy_movies: LabeledTexts) -> None:
    with pytest.raises(ValueError, match="coral needs target texts"):
        create_strategy("coral").fit(create_encoder("tfidf", min_df=1), create_head("logreg"), toy_movies)
    with pytest.raises(ValueError, match="reg must be > 0"):
        create_strategy("coral", reg=0)
