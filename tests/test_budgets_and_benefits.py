"""Label budgets of learning curves (stratified, nested, reproducible, clamped) and the three
benefits of transfer computed on hand-made curves."""

from __future__ import annotations

import pytest

from textransfer.data import LabeledTexts
from textransfer.data.budgets import budget_order, budget_samples, resolve_budgets
from textransfer.evaluation.curves import log_area, matching_budget, transfer_benefits


def _pool(n_a: int = 30, n_b: int = 12, n_c: int = 6) -> LabeledTexts:
    labels = ["a"] * n_a + ["b"] * n_b + ["c"] * n_c
    return LabeledTexts(
        [f"text {i}" for i in range(len(labels))],
        labels,
        domain="pool",
        ids=[f"r{i}" for i in range(len(labels))],
    )


def test_small_budgets_take_k_per_class_and_large_ones_fill_from_the_rest():
    samples = budget_samples(_pool(), [3, 9, 15, 30, "all"], seed=0)
    assert samples[3].label_counts() == {"a": 1, "b": 1, "c": 1}
    assert samples[9].label_counts() == {"a": 3, "b": 3, "c": 3}
    assert samples[15].label_counts() == {"a": 5, "b": 5, "c": 5}
    # class c has only 6 rows: the budget beyond 3 x 6 goes to the other classes, evenly
    assert samples[30].label_counts() == {"a": 12, "b": 12, "c": 6}
    assert len(samples[48]) == 48


def test_stratified_balance_keeps_pool_proportions():
    counts = budget_samples(_pool(), [24], seed=3, balance="stratified")[24].label_counts()
    assert counts == {"a": 15, "b": 6, "c": 3}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_budgets_are_nested_for_a_seed(seed):
    samples = budget_samples(_pool(), [3, 6, 12, 24, "all"], seed=seed)
    sizes = sorted(samples)
    for small, large in zip(sizes, sizes[1:], strict=False):
        assert set(samples[small].ids) < set(samples[large].ids)


def test_budgets_are_reproducible_and_depend_on_the_seed():
    a = budget_samples(_pool(), [6, 12], seed=5)
    b = budget_samples(_pool(), [6, 12], seed=5)
    c = budget_samples(_pool(), [6, 12], seed=6)
    assert a[12].ids == b[12].ids and a[6].ids == b[6].ids
    assert a[12].ids != c[12].ids
    order = budget_order(_pool(), seed=5)
    assert sorted(order.tolist()) == list(range(48))


def test_budget_larger_than_pool_is_clamped_with_a_note():
    sizes, notes = resolve_budgets([0, 8, 100, "all"], pool_size=48, num_classes=3)
    assert sizes == [0, 8, 48]
    assert len(notes) == 1 and "100" in notes[0] and "48" in notes[0]


def test_budget_smaller_than_number_of_classes_is_an_error():
    with pytest.raises(ValueError, match="cannot cover the 3 classes"):
        resolve_budgets([2], pool_size=48, num_classes=3)
    with pytest.raises(ValueError, match="negative"):
        resolve_budgets([-1], pool_size=48, num_classes=3)


def test_log_area_is_mean_height_on_a_log_axis():
    assert log_area([10, 100], [0.5, 0.7]) == pytest.approx(0.6)
    # equal log steps 10 -> 100 -> 1000: trapezoids (0.5+0.7)/2 and (0.7+0.9)/2, averaged
    assert log_area([10, 100, 1000], [0.5, 0.7, 0.9]) == pytest.approx(0.7)
    assert log_area([0, 10], [0.9, 0.4]) == pytest.approx(0.4)  # budget 0 has no log: left out


def test_benefits_on_hand_made_curves():
    base = {8: [0.50, 0.54], 100: [0.60, 0.60], 1000: [0.70, 0.70]}
    better = {0: [0.65], 8: [0.62, 0.66], 100: [0.72, 0.72], 1000: [0.74, 0.74]}
    b = transfer_benefits(better, base)
    assert b["budgets"] == [8, 100, 1000]  # the zero-shot point has no baseline counterpart
    # the start: the zero-shot point (0 labels) against the baseline's first point (8 labels)
    assert (b["start"]["budget"], b["start"]["baseline_budget"]) == (0, 8)
    assert b["start"]["gain"] == pytest.approx(0.13)
    assert b["asymptote"]["gain"] == pytest.approx(0.04)
    assert b["area"]["gain"] == pytest.approx(
        log_area([8, 100, 1000], [0.64, 0.72, 0.74]) - log_area([8, 100, 1000], [0.52, 0.6, 0.7])
    )
    assert b["baseline_full"] == {"budget": 1000, "accuracy": pytest.approx(0.70)}
    assert b["matches_baseline_at"] == 100  # 0.72 >= 0.70 first at 100
    assert b["negative_transfer"] == [] and b["losing_budgets"] == []


def test_negative_transfer_is_flagged_and_an_unreached_baseline_is_none():
    base = {10: [0.6], 100: [0.7], 1000: [0.8]}
    worse = {10: [0.65], 100: [0.66], 1000: [0.75]}
    b = transfer_benefits(worse, base)
    assert b["negative_transfer"] == ["area", "asymptote"]
    assert b["losing_budgets"] == [100, 1000]
    assert b["matches_baseline_at"] is None
    assert matching_budget({0: [0.9]}, 0.8) == 0
    zero_only = transfer_benefits({0: [0.9]}, base)
    assert zero_only["budgets"] == [] and "asymptote" not in zero_only and "area" not in zero_only
    assert (
        zero_only["start"]["gain"] == pytest.approx(0.3) and zero_only["matches_baseline_at"] == 0
    )
