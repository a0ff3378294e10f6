"""Image data sources: a folder of class subfolders (``images:DIR``) and ``.npy`` / ``.npz`` arrays.

Both are read by :func:`textransfer.data.load` (which calls :func:`read_image_source`), so the
``data:`` block of a config works as for text, ``limit``, ``label_map`` and splits included::

    data:
      train: {source: "images:data/pets"}            # pets/cat/*.jpg, pets/dog/*.png, ...
      eval:
        arrays: {source: data/digits.npz}             # np.savez(..., images=X, labels=y)

Every image becomes a uint8 NumPy array: folders give RGB ``(H, W, 3)`` (grayscale, palette and
RGBA files converted; alpha composited on white), arrays keep their shape. Sizes may differ:
the encoder resizes. Files Pillow cannot read (truncated, corrupt) are skipped with a warning
that counts and names them (``on_invalid: drop``, the default) or fail the load
(``on_invalid: error``); they are never dropped silently.
"""

from __future__ import annotations

import logging
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textransfer.data.labeled import Label, LabeledTexts
from textransfer.data.sources import register_reader

if TYPE_CHECKING:
    from textransfer.data.files import RawTable
    from textransfer.data.sources import DataSource

logger = logging.getLogger("textransfer.data")

PREFIX = "images:"
ARRAY_SUFFIXES = (".npy", ".npz")
_IMAGE_KEYS = ("images", "x", "X", "data", "inputs")
_LABEL_KEYS = ("labels", "y", "targets", "target", "label")
_SHOWN = 5


def is_image_source(source: str) -> bool:
    """True for ``images:DIR`` and for ``.npy`` / ``.npz`` files."""
    return source.startswith(PREFIX) or source.lower().endswith(ARRAY_SUFFIXES)


def image_source_path(source: str) -> Path:
    """The path an image source names: ``images:DIR`` without its prefix, ``~`` expanded."""
    return Path(source[len(PREFIX) :] if source.startswith(PREFIX) else source).expanduser()


@dataclass
class FolderReport:
    """What :func:`read_image_folder` found: images per class and the files it skipped."""

    per_class: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    ignored: int = 0  # files without an image suffix (e.g. README.txt, .DS_Store)


def _image_suffixes() -> set[str]:
    from PIL import Image

    return {s.lower() for s in Image.registered_extensions()}


def _to_rgb_uint8(img: Any) -> np.ndarray:
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_image_folder(
    directory: str | Path, on_invalid: str = "drop"
) -> tuple[LabeledTexts, FolderReport]:
    """Reads ``directory/<class>/<image>`` files (the ImageFolder convention).

    Args:
        directory: one subfolder per class; the subfolder name is the label. Any format Pillow
            reads; files are taken in sorted order.
        on_invalid: ``"drop"`` skips unreadable or truncated files (a warning counts and names
            them), ``"error"`` raises instead.

    Returns:
        ``(data, report)``: images as uint8 ``(H, W, 3)`` arrays, labels = class folder names,
        ids = paths relative to ``directory``.

    Raises:
        FileNotFoundError: ``directory`` does not exist.
        ValueError: no class subfolders, a class folder without images, or (``on_invalid:
            error``) an unreadable file — each message names the folder or files.
    """
    from textransfer.vision.preprocess import read_image

    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {root} not found (cwd: {Path.cwd()}): `images:DIR` needs a directory "
            "with one subfolder per class"
        )
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(
            f"{root} has no class subfolders: put the images of each class in its own folder, "
            f"e.g. {root}/cat/1.jpg and {root}/dog/2.jpg"
        )
    suffixes = _image_suffixes()
    report = FolderReport()
    images: list[np.ndarray] = []
    labels: list[Label] = []
    ids: list[str] = []
    for cls_dir in classes:
        files = sorted(p for p in cls_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        candidates = [p for p in files if p.suffix.lower() in suffixes]
        report.ignored += len(files) - len(candidates)
        if not candidates:
            raise ValueError(
                f"class folder {cls_dir} holds no image files ({len(files)} other files): add "
                "images or remove the folder (every subfolder is a class)"
            )
        kept = 0
        for path in candidates:
            try:
                img = read_image(path)
            except OSError as exc:
                report.skipped.append((str(path.relative_to(root)), str(exc).split(": ", 1)[-1]))
                continue
            images.append(_to_rgb_uint8(img))
            labels.append(cls_dir.name)
            ids.append(str(path.relative_to(root)))
            kept += 1
        report.per_class[cls_dir.name] = kept
    if report.skipped:
        shown = "; ".join(f"{f} ({why})" for f, why in report.skipped[:_SHOWN])
        more = f"; and {len(report.skipped) - _SHOWN} more" if len(report.skipped) > _SHOWN else ""
        n_all = len(images) + len(report.skipped)
        if on_invalid == "error":
            raise ValueError(
                f"{root}: {len(report.skipped)} of {n_all} image files cannot be read: {shown}{more}. "
                "Fix or remove them, or set `on_invalid: drop` to skip them"
            )
        logger.warning(
            "%s: skipped %d of %d image files that cannot be read: %s%s. Set `on_invalid: error` "
            "to fail instead",
            root,
            len(report.skipped),
            n_all,
            shown,
            more,
        )
    empty = [c for c, n in report.per_class.items() if n == 0]
    if empty:
        raise ValueError(
            f"{root}: no readable image in class folder(s) {empty}; fix or remove them"
        )
    if report.ignored:
        logger.info("%s: ignored %d files without an image suffix", root, report.ignored)
    return LabeledTexts(images, labels, domain=root.name, ids=ids), report


def _square(arr: np.ndarray, where: str) -> np.ndarray:
    """``(n, d)`` flattened square images -> ``(n, s, s)``; image stacks pass through."""
    if arr.ndim == 2:
        side = math.isqrt(arr.shape[1])
        if side * side != arr.shape[1]:
            raise ValueError(
                f"{where}: a 2-D array (n, {arr.shape[1]}) is read as flattened square images, but "
                f"{arr.shape[1]} is not a square; save images as (n, H, W) or (n, H, W, C)"
            )
        return arr.reshape(len(arr), side, side)
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{where}: images must be (n, H, W), (n, H, W, C) or (n, H*W); got shape {arr.shape}"
        )
    return arr


def _read_arrays(p: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file by name, or a ``.npy`` file's array as ``images``."""
    try:
        if p.suffix.lower() == ".npy":
            return {"images": np.load(p, allow_pickle=False)}
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.keys()}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # never allow_pickle: loading object arrays would run code from the file
        raise ValueError(
            f"{p}: cannot read it as a NumPy {p.suffix} file ({exc}). Save numeric arrays, "
            "e.g. np.savez(path, images=X, labels=y) with X uint8 (n, H, W[, C]); object "
            "arrays (images of mixed sizes) are not read: use a folder of image files instead"
        ) from None


def read_image_arrays(
    path: str | Path, image_key: str | None = None, label_key: str | None = "label"
) -> LabeledTexts:
    """Reads images (and labels) from ``.npz`` (``np.savez``) or ``.npy`` (images only).

    Args:
        path: the file.
        image_key: the ``.npz`` entry of the images; when absent from the file, the first of
            ``images``, ``x``, ``X``, ``data``, ``inputs``.
        label_key: the ``.npz`` entry of the labels; when absent, the first of ``labels``,
            ``y``, ``targets``, ``target``, ``label``; None reads unlabeled images.

    Returns:
        LabeledTexts of image arrays ``(H, W)`` / ``(H, W, C)``; ids are row numbers.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"image array file {p} not found (cwd: {Path.cwd()})")
    if p.suffix.lower() == ".npy" and label_key is not None:
        raise ValueError(
            f"{p}: a .npy file holds only images, no labels. Save both with "
            "np.savez(path, images=X, labels=y) and load the .npz, or set `label_column: null` "
            "to read unlabeled images"
        )
    arrays = _read_arrays(p)
    keys = list(arrays)
    ikey = image_key if image_key in keys else next((k for k in _IMAGE_KEYS if k in keys), None)
    if ikey is None:
        raise ValueError(
            f"{p}: no image array; entries are {keys}: name it `images` (np.savez(path, images=X, labels=y))"
        )
    images, labels = arrays[ikey], None
    if label_key is not None:
        lkey = label_key if label_key in keys else next((k for k in _LABEL_KEYS if k in keys), None)
        if lkey is None:
            raise ValueError(
                f"{p}: no label array; entries are {keys}: name it `labels`, or set "
                "`label_column: null` for unlabeled images"
            )
        labels = arrays[lkey].tolist()
    images = _square(np.asarray(images), str(p))
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{p}: {len(images)} images but {len(labels)} labels")
    return LabeledTexts(list(images), labels, domain=p.stem)


@register_reader("images")
def read_image_source(src: DataSource) -> RawTable:
    """The loader behind ``textransfer.data.load`` for image sources (folder or arrays)."""
    from textransfer.data.files import RawTable

    path = image_source_path(src.source)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        data = read_image_arrays(path, src.text_column, src.label_column)
    else:
        data, _ = read_image_folder(path, on_invalid=src.on_invalid)
        if src.label_column is None:
            data = data.without_labels()
    return RawTable(str(path), ["images", "labels"], data.texts, data.labels, data.ids)
