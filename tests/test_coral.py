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


@pytest.mark.parametrize("align_mean", [False, True])
@pytest.mark.parametrize("standardize", [False, True])
def test_aligned_covariance_matches_target(standardize: bool, align_mean: bool) -> None:
    xs, xt = _gaussians()
    aligned = coral_transform(xs, xt, reg=1e-8, standardize=standardize, align_mean=align_mean)(xs)
    cov_a, cov_t = np.cov(aligned, rowvar=False), np.cov(xt, rowvar=False)
    assert np.abs(cov_a - cov_t).max() < 1e-4 * np.abs(cov_t).max()
    assert np.abs(np.cov(xs, rowvar=False) - cov_t).max() > 1.0  # it was far off before


def test_align_mean_moves_source_to_target_mean() -> None:
    xs, xt = _gaussians(2)
    moved = coral_transform(xs, xt, reg=1.0, align_mean=True)(xs)
    kept = coral_transform(xs, xt, reg=1.0, align_mean=False)(xs)
    np.testing.assert_allclose(moved.mean(axis=0), xt.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(kept.mean(axis=0), xs.mean(axis=0), atol=1e-4)
    assert np.abs(xs.mean(axis=0) - xt.mean(axis=0)).max() > 1.0  # the means really differ


def test_mean_alignment_recovers_a_shifted_domain() -> None:
    # Two classes separated along x0; the target is the source shifted by +3 on x0, so a
    # source-only threshold calls almost every target row "1". Moving the means fixes it.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    xs = np.c_[np.where(y == 1, 1.0, -1.0) + 0.3 * rng.normal(size=2000), rng.normal(size=2000)]
    xt = xs + np.array([3.0, 0.0])
    from sklearn.linear_model import LogisticRegression

    src_only = LogisticRegression().fit(xs, y).score(xt, y)
    aligned = LogisticRegression().fit(coral_transform(xs, xt, align_mean=True)(xs), y).score(xt, y)
    assert src_only < 0.6 and aligned > 0.95


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
    with pytest.raises(ValueError, match=r"coral needs unlabeled target texts.*data\.unlabeled.*without_labels\(\)"):
        create_strategy("coral").fit(create_encoder("tfidf", min_df=1), create_head("logreg"), toy_movies)
    with pytest.raises(ValueError, match="reg must be > 0"):
        create_strategy("coral", reg=0)
