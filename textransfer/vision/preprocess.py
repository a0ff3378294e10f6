"""Image preprocessing carried by image encoders: any input -> normalised ``(3, S, S)`` tensors.

An image input is a file path (any format Pillow reads), a ``PIL.Image`` or a NumPy array:
``(H, W)`` grayscale, ``(H, W, C)`` with C in 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA);
uint8 values in 0..255, or floats in 0..1 (floats above 1 are taken as 0..255). Every image is
turned into RGB (gray repeated over three channels, alpha composited on white), resized to
``image_size`` x ``image_size`` and normalised with the encoder's ``mean`` / ``std``. The settings
live in the encoder's config, so a saved model preprocesses exactly as it did in training.

No torch or Pillow import at module level (the encoder registry imports this module).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textransfer.encoders.base import IMAGE_SUFFIXES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _describe(item: Any) -> str:
    if isinstance(item, str):
        return f"str ({item!r:.50})"
    return type(item).__name__


def _not_an_image(index: int, item: Any) -> TypeError:
    hint = ""
    if isinstance(item, str):
        hint = (
            " A string is read as an image file path and no such file exists; to classify texts "
            "use a text encoder (tfidf, static, transformer, sentence)."
        )
    return TypeError(
        f"input {index} is {_describe(item)}, not an image: this is an image encoder (modality "
        f"'image') and takes file paths, PIL images or NumPy arrays (H, W) / (H, W, C).{hint}"
    )


def read_image(path: str | Path) -> Any:
    """Opens an image file fully (so truncated files fail here, not later) as a PIL image.

    Raises:
        OSError: the file is missing, unreadable or truncated (the message names the file).
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow raises all three on bad files
        raise OSError(f"cannot read image {path}: {exc}") from None


def _read_path(item: str | Path, index: int) -> Any:
    """Reads the image file ``item`` (input ``index``), with errors that name file and fix."""
    path = Path(item)
    if path.is_dir():
        raise ValueError(
            f"input {index}: {path} is a folder, not an image file; pass the image files in it "
            f"(e.g. {path}/*.png), or read it as a dataset with source images:{path}"
        )
    if not path.is_file():
        if isinstance(item, Path) or str(item).lower().endswith(IMAGE_SUFFIXES):
            raise FileNotFoundError(
                f"input {index}: image file {path} not found (cwd: {Path.cwd()})"
            )
        raise _not_an_image(index, item)
    try:
        return read_image(path)
    except OSError as exc:
        raise ValueError(
            f"input {index}: {exc}; re-save it in a format Pillow reads (PNG, JPEG) or leave it out"
        ) from None


def to_rgb_array(item: Any, index: int = 0) -> np.ndarray:
    """Converts one image input to float32 RGB values in 0..1.

    Args:
        item: a path (str / Path), a ``PIL.Image`` or an array (see the module docstring).
        index: the input's position, for error messages.

    Returns:
        ``(H, W, 3)`` float32 array in 0..1.

    Raises:
        TypeError: ``item`` is no image (e.g. a text), naming the modality.
        FileNotFoundError: a path with an image suffix (or a ``Path``) that does not exist.
        ValueError: an unreadable or truncated file, a folder, an array of an unsupported
            shape, or not finite.
    """
    if isinstance(item, (str, Path)):
        item = _read_path(item, index)
    if hasattr(item, "mode") and hasattr(item, "convert"):  # a PIL image
        if item.mode in ("RGBA", "LA", "PA") or (item.mode == "P" and "transparency" in item.info):
            item = item.convert("RGBA")
        elif item.mode not in ("L", "RGB", "I", "I;16", "F"):
            item = item.convert("RGB")
        item = np.asarray(item)
    if not isinstance(item, np.ndarray):
        raise _not_an_image(index, item)
    arr = item
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise _not_an_image(index, item)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 2, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # channels-first (C, H, W) given
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or min(arr.shape[:2]) < 1:
        raise ValueError(
            f"input {index}: image array of shape {tuple(item.shape)} is not (H, W) or (H, W, C) "
            "with C in 1..4; reshape flattened images first (e.g. x.reshape(28, 28))"
        )
    if arr.dtype == np.uint8:
        x = arr.astype(np.float32) / 255.0
    elif arr.dtype.kind in "ui":
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        x = arr.astype(np.float32) / top
    else:
        x = arr.astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError(f"input {index}: image array holds NaN or infinite values")
        if x.max(initial=0.0) > 1.0:  # floats in 0..255
            x = x / 255.0
    x = np.clip(x, 0.0, 1.0)
    channels = x.shape[2]
    if channels in (2, 4):  # composite on white: transparent pixels become background
        alpha = x[:, :, -1:]
        x = x[:, :, :-1] * alpha + (1.0 - alpha)
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return x


@dataclass(frozen=True)
class Preprocess:
    """Resize + normalise settings of an image encoder (part of its config).

    Attributes:
        image_size: output side length in pixels (square).
        mean: per-channel mean subtracted after scaling to 0..1.
        std: per-channel standard deviation divided by.
    """

    image_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if int(self.image_size) < 8:
            raise ValueError(f"image_size must be >= 8 pixels, got {self.image_size}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != 3:
                raise ValueError(f"{name} must have 3 values (R, G, B), got {list(value)}")
        if min(self.std) <= 0:
            raise ValueError(f"std values must be > 0, got {list(self.std)}")

    def batch(self, items: Sequence[Any]) -> Any:
        """Preprocesses ``items`` into a float32 tensor ``(n, 3, image_size, image_size)``."""
        import torch
        import torch.nn.functional as F

        size = int(self.image_size)
        out = torch.empty((len(items), 3, size, size), dtype=torch.float32)
        for i, item in enumerate(items):
            x = torch.from_numpy(np.ascontiguousarray(to_rgb_array(item, i).transpose(2, 0, 1)))
            if x.shape[1:] != (size, size):
                # antialias only matters when shrinking; bilinear is the usual ImageNet resize
                x = F.interpolate(
                    x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True
                )[0]
            out[i] = x
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        return (out - mean) / std

    def config(self) -> dict[str, Any]:
        return {"image_size": int(self.image_size), "mean": list(self.mean), "std": list(self.std)}
