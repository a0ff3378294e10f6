"""Label budgets of a learning curve: nested, stratified, seeded samples of a labeled pool.

A curve trains on 8, 32, 100, ... labeled examples. :func:`budget_order` puts the pool in one
seeded order in which every prefix is as class-balanced as the pool allows (round robin over the
classes, each class in its own seeded random order); the sample of budget ``b`` is the first
``b`` rows of that order. So for one seed a larger budget always contains the smaller one's
examples, small budgets hold ``b // k`` examples of each of the ``k`` classes (few-shot), and the
same seed always gives the same samples.

``balance="stratified"`` keeps the pool's class proportions in every prefix instead.

Example:
    >>> from textransfer.data import LabeledTexts
    >>> pool = LabeledTexts([f"t{i}" for i in range(10)], ["a"] * 7 + ["b"] * 3)
    >>> samples = budget_samples(pool, [2, 4, "all"], seed=0)
    >>> samples[2].label_counts(), samples[4].label_counts(), len(samples[10])
    ({'a': 1, 'b': 1}, {'a': 2, 'b': 2}, 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from textransfer.data.labeled import LabeledTexts
from textransfer.data.splits import _groups

__all__ = ["Balance", "budget_order", "budget_samples", "resolve_budgets"]

Balance = Literal["balanced", "stratified"]
Budget = int | str


def budget_order(pool: LabeledTexts, seed: int = 0, balance: Balance = "balanced") -> np.ndarray:
    """A seeded order of the rows of ``pool`` whose every prefix is class-balanced (or stratified).

    At each position the class furthest below its target share of the prefix comes next
    (``balanced``: equal shares; ``stratified``: the pool's proportions); a class that runs out
    drops out and the others share its part. Ties go to the classes in a seeded order.

    Args:
        pool: labeled rows.
        seed: the random seed (row order within each class and class tie order).
        balance: ``"balanced"`` (``k`` per class) or ``"stratified"`` (pool proportions).

    Returns:
        int64 row indices ``(len(pool),)``, a permutation of ``range(len(pool))``.

    Raises:
        ValueError: ``pool`` has no labels, or ``balance`` is unknown.
    """
    if pool.labels is None:
        raise ValueError(f"{pool.domain!r} has no labels: a label budget needs labeled rows")
    if balance not in ("balanced", "stratified"):
        raise ValueError(f"balance must be 'balanced' or 'stratified', got {balance!r}")
    rng = np.random.default_rng(seed)
    groups = [np.asarray(rows)[rng.permutation(len(rows))] for rows in _groups(pool).values()]
    ties = rng.permutation(len(groups))  # seeded class order for ties
    sizes = np.array([len(g) for g in groups], dtype=np.float64)
    weight = np.ones(len(groups)) if balance == "balanced" else sizes / sizes.sum()
    taken = np.zeros(len(groups), dtype=np.int64)
    out = np.empty(len(pool), dtype=np.int64)
    # Tie-break key: a tiny class-order term, smaller than any real difference in deficit.
    tiebreak = np.empty(len(groups))
    tiebreak[ties] = -np.arange(len(groups)) * 1e-9
    for t in range(len(pool)):
        open_ = taken < sizes
        share = np.where(open_, weight, 0.0)
        share /= share.sum()
        deficit = np.where(open_, share * (t + 1) - taken + tiebreak, -np.inf)
        g = int(np.argmax(deficit))
        out[t] = groups[g][taken[g]]
        taken[g] += 1
    return out


def resolve_budgets(
    budgets: Sequence[Budget], pool_size: int, num_classes: int
) -> tuple[list[int], list[str]]:
    """Budgets as row counts: ``"all"`` -> ``pool_size``; too large ones clamped (with a note).

    Args:
        budgets: ints >= 0 and/or ``"all"``.
        pool_size: labeled rows available.
        num_classes: classes in the pool; a non-zero budget below it cannot hold every class.

    Returns:
        ``(sorted distinct budgets, notes)``; a note says which budgets were clamped.

    Raises:
        ValueError: a negative budget, a non-zero budget smaller than ``num_classes``, or a
            value that is neither an int nor ``"all"``.
    """
    out: list[int] = []
    notes: list[str] = []
    for b in budgets:
        if b == "all":
            value = pool_size
        elif isinstance(b, int) and not isinstance(b, bool):
            value = b
        else:
            raise ValueError(f"budgets: {b!r} is neither a number of labeled examples nor 'all'")
        if value < 0:
            raise ValueError(
                f"budgets: {b} is negative; use 0 (zero-shot) or a number of labeled examples"
            )
        if 0 < value < num_classes:
            raise ValueError(
                f"budgets: {b} labeled examples cannot cover the {num_classes} classes; use 0 (zero-shot) "
                f"or at least {num_classes}"
            )
        if value > pool_size:
            notes.append(
                f"budget {b} is larger than the {pool_size} labeled rows of the pool: clamped to {pool_size}"
            )
            value = pool_size
        out.append(value)
    return sorted(set(out)), notes


def budget_samples(
    pool: LabeledTexts, budgets: Sequence[Budget], seed: int = 0, balance: Balance = "balanced"
) -> dict[int, LabeledTexts]:
    """The nested samples ``{budget: rows}`` of ``pool`` (see the module docstring).

    Budget 0 maps to an empty sample. Rows keep their ids, so ``sample.ids`` is what to save to
    reproduce a run. Budgets are resolved by :func:`resolve_budgets` (its notes are dropped here).
    """
    labels = pool.labels or []
    sizes, _ = resolve_budgets(budgets, len(pool), len(set(labels)))
    order = budget_order(pool, seed, balance)
    return {b: pool.subset(np.sort(order[:b])) for b in sizes}
