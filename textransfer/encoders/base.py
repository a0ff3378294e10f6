"""Encoder contracts.

Every encoder implements :class:`Encoder`; encoders whose weights can be trained (transformer,
sentence, CNN) also satisfy :class:`TrainableEncoder`; encoders that learn something from the
training texts before encoding (TF-IDF's vocabulary, SIF's principal component) satisfy
:class:`FittableEncoder`. Strategies check these protocols, never concrete classes.

To add an encoder: subclass :class:`Encoder` in a new module of this package, decorate it with
``@register_encoder("name")`` and import the module in ``encoders/__init__.py``. Implement
``dim``, ``_encode``, ``config`` and, when the encoder holds state that ``config`` cannot rebuild,
``save``/``load``. The contract tests in ``tests/test_encoder_contract.py`` then cover it.
Helpers: :func:`check_inputs` validates inputs; :meth:`Encoder.fingerprint` hashes ``config``
plus :meth:`Encoder.state_digest`.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from textransfer._registry import Registry


def _load_builtin_encoders() -> None:
    import textransfer.encoders  # noqa: F401  (registers the built-in encoders)


ENCODERS: Registry[Encoder] = Registry("encoder", loader=_load_builtin_encoders)
register_encoder = ENCODERS.register

CONFIG_FILE = "encoder.json"
# Suffixes that mark a string as the name of an image file (for modality checks and messages).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def check_inputs(inputs: Sequence[Any], modality: str = "text") -> list[Any]:
    """Returns ``inputs`` as a list, raising TypeError for anything that is not a text.

    Args:
        inputs: a list/tuple of strings (a single string is rejected: wrap it in a list).
        modality: what the encoder accepts: ``"text"`` items are checked here; other
            modalities (``"image"``) are checked by their encoders' preprocessing.
    """
    if isinstance(inputs, (str, bytes)):
        raise TypeError(
            f"expected a list of {'texts' if modality == 'text' else modality + 's'}, got a single "
            "string: wrap it in a list, e.g. ['my text'] (or ['cat.png'] for an image file)"
        )
    if not isinstance(inputs, Sequence) and not hasattr(inputs, "__iter__"):
        raise TypeError(f"expected a list of texts, got {type(inputs).__name__}")
    items = list(inputs)
    if modality == "text":
        for i, x in enumerate(items):
            if isinstance(x, str) and x.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(x):
                raise TypeError(
                    f"input {i} is the image file {x!r}: this is a text encoder (modality 'text') "
                    "and would classify the file name as a text; classify images with a model "
                    "trained on an image encoder (efficientnet-lite0, cnn)"
                )
            if not isinstance(x, str):
                if hasattr(x, "shape") or hasattr(x, "getpixel"):  # an array or a PIL image
                    raise TypeError(
                        f"input {i} is an image ({type(x).__name__} of shape/size "
                        f"{getattr(x, 'shape', getattr(x, 'size', '?'))}), not str: this is a text "
                        "encoder (modality 'text'); classify images with an image encoder "
                        "(efficientnet-lite0, cnn)"
                    )
                raise TypeError(
                    f"input {i} is {type(x).__name__} ({x!r:.40}), not str: this is a text encoder; "
                    "convert inputs to strings (missing values to '') before predicting"
                )
    return items


def weights_digest(module: Any) -> str:
    """sha256 over a module's state dict (names, shapes, dtypes and bytes), 24 hex chars."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


def modified_fingerprint(encoder: Encoder, location_key: str) -> str:
    """Fingerprint of an encoder with trained weights: its config without ``location_key`` (where
    the weights live) plus the weights' digest, so saving and reloading elsewhere keeps it."""
    payload = json.dumps(
        {
            "name": encoder.name,
            "config": {**encoder.config(), location_key: None},
            "state": encoder.state_digest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


class Encoder(ABC):
    """Maps inputs to fixed-size float32 feature vectors.

    Implement: ``dim`` (property), ``_encode(items, batch_size)``, ``config()``.
    Optional: ``save``/``load`` (default: ``config`` as JSON is enough to rebuild),
    ``state_digest`` (anything beyond ``config`` that changes the output).
    """

    registry_name: ClassVar[str]
    modality: ClassVar[str] = "text"

    @property
    def name(self) -> str:
        return type(self).registry_name

    @property
    @abstractmethod
    def dim(self) -> int:
        """Size of each feature vector."""

    @abstractmethod
    def _encode(self, items: list[Any], batch_size: int) -> np.ndarray:
        """Encodes validated, non-empty ``items``; returns (n, dim) array in input order."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this encoder (JSON-serialisable)."""

    def encode(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Encodes ``inputs`` into a float32 array of shape ``(len(inputs), dim)``, in input order.

        Example:
            >>> enc = create_encoder("tfidf"); enc.fit(["good film", "bad film"])
            >>> enc.encode(["good"]).shape  # doctest: +SKIP
            (1, 3)
        """
        items = check_inputs(inputs, self.modality)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._encode(items, batch_size)
        return np.ascontiguousarray(out, dtype=np.float32)

    def state_digest(self) -> str:
        """A digest of state not captured by ``config`` (fitted vocabulary, trained weights)."""
        return ""

    def fingerprint(self) -> str:
        """Identifies this encoder's output: same fingerprint, same features (for the cache)."""
        payload = json.dumps(
            {"name": self.name, "config": self.config(), "state": self.state_digest()},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    def save(self, directory: str | Path) -> None:
        """Writes what :meth:`load` needs into ``directory`` (created if missing)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / CONFIG_FILE).write_text(json.dumps(self.config(), indent=2, sort_keys=True))

    @classmethod
    def load(cls, directory: str | Path) -> Encoder:
        """Rebuilds an encoder saved by :meth:`save`."""
        kwargs = json.loads((Path(directory) / CONFIG_FILE).read_text())
        return cls(**kwargs)


@runtime_checkable
class FittableEncoder(Protocol):
    """An encoder that learns from the training inputs (e.g. a vocabulary) before encoding."""

    def fit(self, inputs: Sequence[Any]) -> Any: ...


@runtime_checkable
class TrainableEncoder(Protocol):
    """An encoder whose weights can be trained end to end (fine-tuning, DANN).

    ``module`` is the ``nn.Module`` holding all weights; ``collate(items)`` turns raw inputs into
    a batch (dict of tensors); ``forward(batch)`` returns pooled features ``(n, dim)``;
    ``layer_groups()`` returns ``[(group_name, [parameters])]`` ordered bottom -> top
    (embeddings, layer 0 .. L-1, pooler), the unit of freezing and layer-wise learning rates.
    """

    module: Any

    def collate(self, items: list[Any]) -> dict[str, Any]: ...

    def forward(self, batch: dict[str, Any]) -> Any: ...

    def layer_groups(self) -> list[tuple[str, list[Any]]]: ...


def create_encoder(name: str, **kwargs: Any) -> Encoder:
    """Builds a registered encoder by name (see :func:`list_encoders`).

    Example:
        >>> enc = create_encoder("static", vectors="glove-6b-50d", pooling="mean")  # doctest: +SKIP
    """
    return ENCODERS.create(name, **kwargs)


def list_encoders() -> list[str]:
    """Names of the registered encoders."""
    return ENCODERS.names()
