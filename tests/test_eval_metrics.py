"""Evaluation metrics against hand-computed values: ECE, reliability bins, bootstrap CIs, A-distance."""

from __future__ import annotations

import numpy as np
import pytest

from textransfer.evaluation.bootstrap import bootstrap_ci, metric_value
from textransfer.evaluation.calibration import expected_calibration_error, reliability_bins
from textransfer.evaluation.divergence import proxy_a_distance
from textransfer.evaluation.scoring import pool_seeds, score_predictions


def test_ece_hand_computed() -> None:
    # Bins of width 0.5: confidences 0.9, 0.8 (bin 2, one right one wrong) and 0.6 (bin 2, right),
    # 0.55 is in bin 2 too; take a 0.4-confidence 3-class row for bin 1.
    proba = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.4, 0.3, 0.3], [0.0, 0.6, 0.4]])
    y = np.array([0, 1, 0, 1])
    # bin (0, .5]: row 2, conf 0.4, acc 1 -> |1 - 0.4| = 0.6, weight 1/4
    # bin (.5, 1]: rows 0, 1, 3, mean conf 2.3/3, acc 2/3 -> |2/3 - 2.3/3| = 0.1, weight 3/4
    expected = 0.25 * 0.6 + 0.75 * 0.1
    assert expected_calibration_error(proba, y, n_bins=2) == pytest.approx(expected)
    bins = reliability_bins(proba, y, n_bins=2)
    assert bins["count"] == [1, 3]
    assert bins["accuracy"] == pytest.approx([1.0, 2 / 3])


def test_ece_perfectly_calibrated_and_confidently_wrong() -> None:
    y = np.array([0, 1, 0, 1])
    assert expected_calibration_error(np.eye(2)[y], y) == 0.0
    assert expected_calibration_error(np.eye(2)[1 - y], y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="proba must be"):
        expected_calibration_error(np.ones((3, 2)) / 2, y)


def test_bootstrap_ci_contains_estimate_and_matches_formulas() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    pred = np.where(rng.random(300) < 0.8, y, 1 - y)
    ci = bootstrap_ci([(y, pred)], "accuracy", n_boot=500, seed=1)
    assert ci["estimate"] == pytest.approx((y == pred).mean())
    assert ci["low"] <= ci["estimate"] <= ci["high"]
    assert 0.05 < ci["high"] - ci["low"] < 0.15  # ~ 4 * sqrt(.8 * .2 / 300) = 0.092
    from sklearn.metrics import f1_score

    assert metric_value(y, pred, "macro_f1", 2) == pytest.approx(f1_score(y, pred, average="macro"))
    two = bootstrap_ci([(y, pred), (y, y)], "macro_f1", n_boot=200)
    assert two["estimate"] == pytest.approx((f1_score(y, pred, average="macro") + 1.0) / 2)
    assert two["low"] <= two["estimate"] <= two["high"]


def test_proxy_a_distance_separable_vs_identical() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 5))
    separable = proxy_a_distance(a, rng.normal(size=(400, 5)) + 6.0, seed=0)
    assert separable["a_distance"] == pytest.approx(2.0)  # held-out error 0
    same = proxy_a_distance(a, rng.normal(size=(400, 5)), seed=0)
    assert abs(same["a_distance"]) < 0.3  # error ~0.5: indistinguishable
    assert same["a_distance"] == pytest.approx(2 * (1 - 2 * same["domain_error"]))
    with pytest.raises(ValueError, match="same dim"):
        proxy_a_distance(a, a[:, :3])


def test_score_and_pool_seeds() -> None:
    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])
    s = score_predictions(y, proba, ["neg", "pos"], n_boot=100)
    assert s.metrics["accuracy"] == pytest.approx(0.8)
    assert s.metrics["accuracy_ci95"][0] <= 0.8 <= s.metrics["accuracy_ci95"][1]
    pooled = pool_seeds([s, s], ["neg", "pos"], n_boot=50)
    assert pooled["accuracy"]["mean"] == pytest.approx(0.8) and pooled["accuracy"]["std"] == 0.0
    assert pooled["confusion_matrix"] == [[4, 0], [2, 4]]
    assert sum(pooled["reliability"]["count"]) == 10
