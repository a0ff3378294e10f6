"""Deterministic, seeded, stratified splits and subsamples of :class:`LabeledTexts`.

Both functions return rows in their original order (only *which* rows is random), so a split is
a pure function of ``(data, size, seed)`` and the fingerprint of each side is stable.

Example:
    >>> from textransfer.data import LabeledTexts, stratified_split
    >>> data = LabeledTexts(["a", "b", "c", "d"], ["x", "y", "x", "y"])
    >>> train, test = stratified_split(data, test_size=0.5, seed=0)
    >>> len(train), len(test), sorted(test.labels)
    (2, 2, ['x', 'y'])
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import numpy as np

from textransfer.data.labeled import LabeledTexts

__all__ = ["shared_inputs", "stratified_split", "stratified_subsample"]


def _groups(data: LabeledTexts) -> dict[Hashable, list[int]]:
    """Row indices per label, labels in a deterministic order (sorted by their string form)."""
    by_label: dict[Hashable, list[int]] = {}
    for i, lab in enumerate(data.labels or []):
        by_label.setdefault(lab, []).append(i)
    return {
        lab: by_label[lab] for lab in sorted(by_label, key=lambda v: (type(v).__name__, str(v)))
    }


def _allocate(sizes: list[int], total: int, caps: list[int]) -> list[int] | None:
    """Splits ``total`` over groups in proportion to ``sizes`` (largest remainder), never above
    ``caps``; each share is the floor or ceiling of the exact share. None when it cannot fit."""
    n = sum(sizes)
    exact = [s * total / n for s in sizes]
    shares = [min(math.floor(e), c) for e, c in zip(exact, caps, strict=True)]
    left = total - sum(shares)
    # Hand out what is left to the largest fractional parts first; ties go to the first group so
    # the result does not depend on anything but the inputs.
    order = sorted(range(len(sizes)), key=lambda g: (-(exact[g] - math.floor(exact[g])), g))
    for g in order:
        if left == 0:
            break
        if shares[g] < caps[g] and shares[g] < math.ceil(exact[g]):
            shares[g] += 1
            left -= 1
    return shares if left == 0 else None


def _resolve_test_size(test_size: float | int, n: int, domain: str) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise TypeError(f"test_size must be a fraction or a row count, got {test_size!r}")
    if isinstance(test_size, float):
        if not 0.0 < test_size < 1.0:
            raise ValueError(
                f"test_size={test_size} is out of range: use a fraction strictly between 0 and 1 "
                f"(e.g. 0.2) or a row count between 1 and {n - 1}"
            )
        n_test = round(test_size * n)
    else:
        if not 1 <= test_size <= n - 1:
            raise ValueError(
                f"test_size={test_size} rows is out of range for {domain!r} with {n} rows: use a "
                f"count between 1 and {n - 1}, or a fraction such as 0.2"
            )
        n_test = test_size
    if n_test < 1 or n_test > n - 1:
        raise ValueError(
            f"test_size={test_size} of {n} rows in {domain!r} leaves {n_test} test and "
            f"{n - n_test} train rows; both sides need at least one: use a larger dataset or a "
            "different test_size"
        )
    return n_test


def stratified_split(
    data: LabeledTexts, test_size: float | int, seed: int = 0
) -> tuple[LabeledTexts, LabeledTexts]:
    """Splits ``data`` into train and test, keeping the class proportions on both sides.

    Each class sends the floor or the ceiling of its exact share to the test side, so class
    ratios match to within one example; every class keeps at least one training example.
    Unlabeled data gets a plain seeded random split.

    Args:
        data: the rows to split.
        test_size: a fraction in (0, 1) or a number of test rows.
        seed: the random seed; the same seed always gives the same split.

    Returns:
        ``(train, test)``, disjoint, together all of ``data``, each in the original row order.

    Raises:
        ValueError: ``test_size`` out of range, a class with fewer than 2 examples, or a split
            that would leave one side empty or a class without training examples.

    Example:
        >>> data = LabeledTexts(list("abcdef"), ["p", "n"] * 3)
        >>> train, test = stratified_split(data, test_size=2, seed=1)
        >>> sorted(test.labels)
        ['n', 'p']
    """
    n = len(data)
    if n < 2:
        raise ValueError(f"cannot split {data.domain!r}: it has {n} row(s), need at least 2")
    n_test = _resolve_test_size(test_size, n, data.domain)
    rng = np.random.default_rng(seed)
    if data.labels is None:
        test_idx = rng.permutation(n)[:n_test]
    else:
        groups = _groups(data)
        small = {lab: len(rows) for lab, rows in groups.items() if len(rows) < 2}
        if small:
            desc = ", ".join(f"{lab!r} ({c} example)" for lab, c in small.items())
            raise ValueError(
                f"cannot stratify {data.domain!r}: class {desc} has fewer than 2 examples, so it "
                "cannot appear on both sides. Fix: add examples, merge it into another class with "
                "`label_map:`, or drop it"
            )
        sizes = [len(rows) for rows in groups.values()]
        shares = _allocate(sizes, n_test, caps=[s - 1 for s in sizes])
        if shares is None:
            raise ValueError(
                f"test_size={test_size} of {data.domain!r} ({n} rows, classes "
                f"{dict(zip(groups, sizes, strict=True))}) would leave a class without training examples: "
                "use a smaller test_size"
            )
        test_idx = np.concatenate(
            [
                np.asarray(rows)[rng.permutation(len(rows))[:k]]
                for rows, k in zip(groups.values(), shares, strict=True)
            ]
        )
    is_test = np.zeros(n, dtype=bool)
    is_test[test_idx] = True
    return data.subset(np.flatnonzero(~is_test)), data.subset(np.flatnonzero(is_test))


def stratified_subsample(data: LabeledTexts, n: int, seed: int = 0) -> LabeledTexts:
    """A seeded subsample of ``n`` rows with the class proportions of ``data`` (within one example).

    Used by ``DataSource.limit``. ``n >= len(data)`` returns ``data`` unchanged.

    Args:
        data: the rows to sample from.
        n: how many rows to keep (>= 1).
        seed: the random seed.

    Returns:
        The sampled rows, in their original order.

    Example:
        >>> data = LabeledTexts(list("abcdefgh"), ["p"] * 6 + ["n"] * 2)
        >>> stratified_subsample(data, 4, seed=0).label_counts()
        {'p': 3, 'n': 1}
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"subsample size must be a positive integer, got {n!r}")
    if n >= len(data):
        return data
    rng = np.random.default_rng(seed)
    if data.labels is None:
        keep = rng.permutation(len(data))[:n]
    else:
        groups = _groups(data)
        sizes = [len(rows) for rows in groups.values()]
        shares = _allocate(sizes, n, caps=sizes)
        assert shares is not None  # caps = sizes always fit n < len(data)
        keep = np.concatenate(
            [
                np.asarray(rows)[rng.permutation(len(rows))[:k]]
                for rows, k in zip(groups.values(), shares, strict=True)
            ]
        )
    return data.subset(np.sort(keep))


def _input_key(item: Any) -> Hashable:
    """A hashable stand-in for an input: the text itself, or an image array's shape, dtype and bytes."""
    if isinstance(item, str):
        return item
    if isinstance(item, np.ndarray):
        return (item.shape, item.dtype.str, item.tobytes())
    try:
        hash(item)
    except TypeError:
        return repr(item)
    return item


def shared_inputs(train: LabeledTexts, other: LabeledTexts) -> int:
    """How many rows of ``other`` have an input that also appears in ``train``.

    Duplicate rows in a source land on both sides of a random split; a held-out score over
    inputs the model was trained on is optimistic (20 texts repeated 10 times score 1.0).

    Example:
        >>> shared_inputs(LabeledTexts(["a", "b"], [0, 1]), LabeledTexts(["b", "c", "b"], [1, 0, 1]))
        2
    """
    seen = {_input_key(t) for t in train.texts}
    return sum(_input_key(t) in seen for t in other.texts)
