"""Splits: deterministic by seed, stratified, disjoint and complete, with clear errors."""

from __future__ import annotations

import pytest

from textransfer.data import LabeledTexts, stratified_split, stratified_subsample


def _data(counts: dict[str, int]) -> LabeledTexts:
    texts, labels = [], []
    for lab, n in counts.items():
        for i in range(n):
            texts.append(f"{lab} {i}")
            labels.append(lab)
    return LabeledTexts(texts, labels, domain="toy", ids=[f"id{i}" for i in range(len(texts))])


def test_deterministic_by_seed():
    data = _data({"a": 30, "b": 20, "c": 7})
    first = stratified_split(data, 0.3, seed=3)
    again = stratified_split(data, 0.3, seed=3)
    other = stratified_split(data, 0.3, seed=4)
    assert first[1].ids == again[1].ids and first[0].ids == again[0].ids
    assert first[1].ids != other[1].ids


@pytest.mark.parametrize("test_size", [0.2, 0.25, 0.5, 0.9, 11])
def test_stratified_disjoint_and_complete(test_size):
    counts = {"a": 30, "b": 20, "c": 7}
    data = _data(counts)
    train, test = stratified_split(data, test_size, seed=0)
    assert set(train.ids).isdisjoint(test.ids)
    assert sorted(train.ids + test.ids) == sorted(data.ids)
    n_test = round(test_size * len(data)) if isinstance(test_size, float) else test_size
    assert len(test) == n_test
    frac = n_test / len(data)
    for lab, n in counts.items():
        assert abs(test.label_counts().get(lab, 0) - n * frac) <= 1  # within one example
        assert train.label_counts()[lab] >= 1
    assert train.domain == test.domain == "toy"


def test_rows_keep_original_order_and_pairs():
    data = _data({"a": 10, "b": 10})
    train, test = stratified_split(data, 0.3, seed=0)
    index = {i: n for n, i in enumerate(data.ids)}
    for part in (train, test):
        positions = [index[i] for i in part.ids]
        assert positions == sorted(positions)
        assert all(
            data.texts[p] == t and data.labels[p] == lab
            for p, t, lab in zip(positions, part.texts, part.labels, strict=True)
        )


def test_unlabeled_plain_split():
    data = LabeledTexts([f"t{i}" for i in range(10)])
    train, test = stratified_split(data, 3, seed=1)
    assert len(test) == 3 and len(train) == 7 and train.labels is None
    assert stratified_split(data, 3, seed=1)[1].texts == test.texts


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, 0, 20, -3])
def test_test_size_out_of_range(bad):
    with pytest.raises(ValueError, match="out of range"):
        stratified_split(_data({"a": 10, "b": 10}), bad)


def test_test_size_wrong_type():
    with pytest.raises(TypeError):
        stratified_split(_data({"a": 10, "b": 10}), "0.2")  # type: ignore[arg-type]


def test_class_with_one_example_is_named():
    with pytest.raises(ValueError) as err:
        stratified_split(_data({"a": 10, "rare": 1}), 0.2)
    assert "'rare' (1 example)" in str(err.value) and "label_map" in str(err.value)


def test_fraction_that_rounds_to_empty_side():
    with pytest.raises(ValueError, match="both sides need at least one"):
        stratified_split(_data({"a": 5, "b": 5}), 0.01)


def test_split_that_would_empty_a_class_from_train():
    # 9 test rows of 10: the two classes of 5 cannot both keep a training example.
    with pytest.raises(ValueError, match="without training examples"):
        stratified_split(_data({"a": 5, "b": 5}), 9)


def test_subsample_seeded_and_stratified():
    data = _data({"a": 60, "b": 30, "c": 10})
    sub = stratified_subsample(data, 20, seed=5)
    assert sub.label_counts() == {"a": 12, "b": 6, "c": 2}
    assert stratified_subsample(data, 20, seed=5).ids == sub.ids
    assert stratified_subsample(data, 20, seed=6).ids != sub.ids
    assert stratified_subsample(data, 500) is data
    with pytest.raises(ValueError, match="positive integer"):
        stratified_subsample(data, 0)
