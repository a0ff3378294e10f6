"""Classifier = encoder + head + label map: predict, predict_proba, save, load.

A saved model is a directory::

    textransfer.json   format version, registry names + kwargs of encoder/head, strategy,
                       labels, metrics, package versions
    encoder/           what the encoder's save() writes (JSON; safetensors / save_pretrained)
    head/              head.json + head.safetensors

Never pickle. Saves are atomic: a crash mid-save leaves the previous model (or none), never a
half-written directory that loads wrongly.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textransfer.data.labeled import Label, LabelMap
from textransfer.encoders.base import ENCODERS, Encoder, check_inputs
from textransfer.heads.base import HEADS, Head

FORMAT_VERSION = 1
META_FILE = "textransfer.json"
_PACKAGES = ("textransfer", "torch", "transformers", "sentence-transformers", "gensim", "scikit-learn", "numpy")


class ModelFormatError(ValueError):
    """A model directory is incomplete, corrupt or written by a newer textransfer."""


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in _PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


class Classifier:
    """A trained text (or image) classifier.

    Example:
        >>> clf = textransfer.load("runs/movies_frozen/model")  # doctest: +SKIP
        >>> clf.predict(["great battery life"])  # doctest: +SKIP
        ['positive']
    """

    def __init__(
        self,
        encoder: Encoder,
        head: Head,
        label_map: LabelMap,
        strategy: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.label_map = label_map
        self.strategy = strategy or {}
        self.metrics = metrics or {}

    @property
    def labels(self) -> list[Label]:
        """Class labels, in the column order of :meth:`predict_proba`."""
        return list(self.label_map.labels)

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, k)`` float32 from precomputed encoder features ``(n, dim)``."""
        if len(features) == 0:
            return np.zeros((0, len(self.label_map)), dtype=np.float32)
        return self.head.predict_proba(np.asarray(features, dtype=np.float32))

    def predict_proba(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, float32 ``(len(inputs), len(labels))``, columns in ``labels`` order."""
        items = check_inputs(inputs, self.encoder.modality)
        return self.predict_proba_features(self.encoder.encode(items, batch_size=batch_size))

    def predict(self, inputs: Sequence[Any], batch_size: int = 32) -> list[Label]:
        """The most probable label of each input; an empty list gives an empty list."""
        proba = self.predict_proba(inputs, batch_size=batch_size)
        return self.label_map.decode(proba.argmax(axis=1)) if len(proba) else []

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Writes the model directory atomically and returns its path."""
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            self.encoder.save(tmp / "encoder")
            self.head.save(tmp / "head")
            meta = {
                "format_version": FORMAT_VERSION,
                "encoder": {"name": self.encoder.name, "kwargs": self.encoder.config()},
                "head": {"name": self.head.name, "kwargs": self.head.config()},
                "strategy": self.strategy,
                "labels": self.label_map.to_json(),
                "metrics": self.metrics,
                "versions": _versions(),
            }
            # The meta file is written last: a directory without it is never taken for a model.
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
            old = None
            if target.exists():
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    @classmethod
    def load(cls, directory: str | Path) -> Classifier:
        """Loads a model directory written by :meth:`save` (see :func:`textransfer.load`)."""
        d = Path(directory)
        meta_path = d / META_FILE
        if not d.is_dir():
            raise FileNotFoundError(
                f"no model directory at {d} (cwd: {Path.cwd()}): pass the `model/` folder written by "
                "`textransfer run`, e.g. runs/<name>/model"
            )
        if not meta_path.exists():
            raise ModelFormatError(
                f"{d} is not a textransfer model: {META_FILE} is missing (the save was interrupted, "
                "or this is another folder); re-run training or point at runs/<name>/model"
            )
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"{meta_path} is corrupt ({exc}); re-run training") from None
        version = meta.get("format_version")
        if not isinstance(version, int):
            raise ModelFormatError(f"{meta_path} has no format_version; re-run training")
        if version > FORMAT_VERSION:
            raise ModelFormatError(
                f"{d} was written by a newer textransfer (model format {version}; this version reads "
                f"up to {FORMAT_VERSION}): upgrade with pip install -U textransfer"
            )
        for part in ("encoder", "head"):
            if not (d / part).is_dir():
                raise ModelFormatError(f"{d} is incomplete: the {part}/ folder is missing; re-run training")
        try:
            encoder = ENCODERS.get(meta["encoder"]["name"]).load(d / "encoder")  # type: ignore[attr-defined]
            head = HEADS.get(meta["head"]["name"]).load(d / "head")  # type: ignore[attr-defined]
        except FileNotFoundError as exc:
            raise ModelFormatError(f"{d} is incomplete: {exc.filename or exc} is missing; re-run training") from None
        return cls(
            encoder=encoder,
            head=head,
            label_map=LabelMap(meta["labels"]),
            strategy=meta.get("strategy", {}),
            metrics=meta.get("metrics", {}),
        )


def load(model_dir: str | Path) -> Classifier:
    """Loads a saved model directory.

    Example:
        >>> clf = textransfer.load("runs/movies_to_products/model")  # doctest: +SKIP
        >>> clf.predict_proba(["great battery"]).shape  # doctest: +SKIP
        (1, 2)
    """
    return Classifier.load(model_dir)


def predict(model_dir: str | Path, inputs: Sequence[Any], batch_size: int = 32) -> list[Label]:
    """Loads ``model_dir`` and predicts labels for ``inputs`` in one call."""
    return load(model_dir).predict(inputs, batch_size=batch_size)
