"""Image data sources: a folder of class subfolders (mixed formats, modes and sizes, a truncated
file), .npz / .npy arrays, and the packaged digits / mnist-5k sets, all through data.load."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from textransfer.data import load, load_with_report, stratified_split
from textransfer.vision.data import read_image_folder


def test_folder_skips_unreadable_files_with_a_count(image_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="textransfer.data"):
        data, report = read_image_folder(image_folder)
    assert report.skipped and report.skipped[0][0].endswith("broken.png")
    assert report.per_class == {"circle": 3, "square": 3} and report.ignored == 1
    assert "skipped 1 of 7 image files" in caplog.text and "broken.png" in caplog.text
    assert sorted(set(data.labels)) == ["circle", "square"]
    # every mode (L, P, RGBA, RGB) and size converted to RGB uint8, sizes kept
    assert all(x.dtype == np.uint8 and x.ndim == 3 and x.shape[2] == 3 for x in data.texts)
    assert len({x.shape for x in data.texts}) == 6
    rgba = data.texts[data.ids.index("circle/2.png")]
    assert rgba[0, 0].tolist() == [255, 255, 255]  # transparent corner composited on white


def test_folder_unreadable_files_can_fail_the_load(image_folder):
    with pytest.raises(
        ValueError, match=r"1 of 7 image files cannot be read: square/broken.png.*on_invalid: drop"
    ):
        load({"source": f"images:{image_folder}", "on_invalid": "error"})


def test_folder_through_data_load_with_limit_and_label_map(image_folder):
    data, report = load_with_report(
        {"source": f"images:{image_folder}", "label_map": {"circle": "round"}}
    )
    assert data.domain == "shapes" and report.kept == 6
    assert sorted(data.label_counts().items()) == [("round", 3), ("square", 3)]
    train, test = stratified_split(data, 0.5, seed=0)
    assert len(train) == len(test) == 3


def test_empty_class_folder_is_an_error(image_folder):
    (image_folder / "triangle").mkdir()
    (image_folder / "triangle" / "README.md").write_text("todo")
    with pytest.raises(ValueError, match="triangle holds no image files"):
        load(f"images:{image_folder}")


def test_missing_folder_and_folder_without_classes(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs a directory"):
        load(f"images:{tmp_path / 'nope'}")
    with pytest.raises(ValueError, match="no class subfolders"):
        load(f"images:{tmp_path}")


def test_npz_arrays_flattened_and_labeled(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 64), dtype=np.uint8)  # flattened 8x8
    np.savez(tmp_path / "set.npz", X=x, y=np.array([0, 1] * 3))
    data = load(str(tmp_path / "set.npz"))
    assert data.texts[0].shape == (8, 8) and data.labels == [0, 1] * 3 and data.domain == "set"
    np.testing.assert_array_equal(data.texts[2], x[2].reshape(8, 8))


def test_npy_holds_images_only(tmp_path):
    np.save(tmp_path / "imgs.npy", np.zeros((3, 5, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="np.savez"):
        load(str(tmp_path / "imgs.npy"))
    data = load({"source": str(tmp_path / "imgs.npy"), "label_column": None})
    assert len(data) == 3 and data.labels is None


def test_packaged_digits_and_mnist():
    digits = load("digits")
    assert (
        len(digits) == 1797
        and digits.texts[0].shape == (8, 8)
        and digits.texts[0].dtype == np.uint8
    )
    assert set(digits.labels) == set(range(10))
    mnist = load({"source": "mnist-5k", "limit": 100, "sample_seed": 0})
    assert len(mnist) == 100 and mnist.texts[0].shape == (28, 28)
    assert mnist.label_counts() == {k: 10 for k in range(10)}
    assert (
        mnist.fingerprint()
        == load({"source": "mnist-5k", "limit": 100, "sample_seed": 0}).fingerprint()
    )


def test_digits_in_mnist_layout():
    from textransfer.vision.datasets import mnist_layout

    digits, laid_out = load("digits"), load("digits-28")
    assert laid_out.labels == digits.labels and laid_out.domain == "digits-28"
    x = laid_out.texts[0]
    assert x.shape == (28, 28) and x.dtype == np.uint8
    rows, cols = np.nonzero(x)
    assert rows.max() - rows.min() < 20 and cols.max() - cols.min() < 20  # inside a 20x20 box
    ys, xs = np.indices(x.shape)
    mass = x.astype(float) / x.sum()
    assert abs((ys * mass).sum() - 13.5) <= 1 and abs((xs * mass).sum() - 13.5) <= 1
    assert not mnist_layout(np.zeros((8, 8), np.uint8)).any()  # a blank image stays blank
