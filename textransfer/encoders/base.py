"""Encoder contracts.

Every encoder implements :class:`Encoder`; encoders whose weights can be trained (transformer,
sentence, CNN) also satisfy :class:`TrainableEncoder`; encoders that learn something from the
training texts before encoding (TF-IDF's vocabulary, SIF's principal component) satisfy
:class:`FittableEncoder`. Strategies check these protocols, never concrete classes.

To add an encoder: subclass :class:`Encoder` in a new module of this package, decorate it with
``@register_encoder("name")`` and import the module in ``encoders/__init__.py``. Implement
``dim``, ``_encode``, ``config`` and, when the encoder holds state that ``config`` cannot rebuild,
``save``/``load`` (with the keywords of :meth:`Encoder.save` / :meth:`Encoder.load`: a saved model
is data from a stranger, see DESIGN.md section 7). The contract tests in
``tests/test_encoder_contract.py`` then cover it.
Helpers: :func:`check_inputs` validates inputs; :meth:`Encoder.fingerprint` hashes ``config``
plus :meth:`Encoder.state_digest`.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from textransfer._builtins import builtin_loader
from textransfer._registry import Registry

ENCODERS: Registry[Encoder] = Registry("encoder", loader=builtin_loader("encoder"))
register_encoder = ENCODERS.register

CONFIG_FILE = "encoder.json"
# Suffixes that mark a string as the name of an image file (for modality checks and messages).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def check_batch_size(batch_size: int) -> int:
    """Returns ``batch_size`` as an int, raising ValueError unless it is a positive integer.

    A zero or negative batch size would otherwise fail deep inside ``range()`` or, worse,
    return uninitialised memory as features.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive integer (inputs encoded at once, e.g. 32), got {batch_size!r}"
        )
    return int(batch_size)


def check_inputs(inputs: Sequence[Any], modality: str = "text") -> list[Any]:
    """Returns ``inputs`` as a list, raising TypeError for anything that is not a text.

    Args:
        inputs: an ordered collection of strings: a list, tuple, array, pandas Series or a
            generator (consumed once). A single string is rejected (wrap it in a list), and so
            are dicts and sets: predictions come back in input order, and a set has none (a
            dict would give its keys, rarely what was meant).
        modality: what the encoder accepts: ``"text"`` items are checked here; other
            modalities (``"image"``) are checked by their encoders' preprocessing.
    """
    what = "texts" if modality == "text" else modality + "s"
    if isinstance(inputs, (str, bytes)):
        raise TypeError(
            f"expected a list of {what}, got a single string: pass a list of {what}, e.g. "
            "['my text'] (or ['cat.png'] for an image file)"
        )
    if isinstance(inputs, Mapping):
        raise TypeError(
            f"expected a list of {what}, got a {type(inputs).__name__}: pass list(d.values()) for "
            "its values (or list(d) for its keys), so the predictions' order is explicit"
        )
    if isinstance(inputs, Set):
        raise TypeError(
            f"expected a list of {what}, got a {type(inputs).__name__}, which has no order: the "
            "predictions could not be matched to the inputs; pass a list, e.g. sorted(s)"
        )
    if not isinstance(inputs, Sequence) and not hasattr(inputs, "__iter__"):
        raise TypeError(f"expected a list of {what}, got {type(inputs).__name__}")
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
    #: True once the weights were trained (fine-tuned, adapted); only trainable encoders set it.
    weights_modified: bool = False

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
            >>> enc = create_encoder("tfidf").fit(["good film", "bad film"])
            >>> enc.encode(["good"]).shape  # unigrams and bigrams of the two texts
            (1, 5)
        """
        check_batch_size(batch_size)
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

    def save(self, directory: str | Path, *, portable: bool = False) -> None:
        """Writes what :meth:`load` needs into ``directory`` (created if missing).

        Args:
            directory: the encoder's folder.
            portable: also copy into ``directory`` whatever the config references by a local
                path (word vectors, a model folder), so that the folder works on another
                machine and references nothing outside itself. :meth:`Classifier.save` passes
                True; False keeps such references as paths (fine on this machine).
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        write_config(d, self.config())

    @classmethod
    def load(
        cls, directory: str | Path, *, trust_remote_code: bool = False, confined: bool = False
    ) -> Encoder:
        """Rebuilds an encoder saved by :meth:`save`.

        Args:
            directory: the encoder's folder.
            trust_remote_code: allow model code shipped in the folder (transformer / sentence
                encoders); never read from the saved files, only from the caller.
            confined: the folder came from someone else (:meth:`Classifier.load` passes True):
                every path it names must stay inside it, or be a registered resource name (or,
                for transformer models, a hub id).
        """
        return cls(**read_config(directory))


def write_config(directory: Path, config: dict[str, Any]) -> None:
    """Writes ``config`` as the encoder's JSON, without ``trust_remote_code``: permission to run
    a model's code is the loading caller's decision, never a saved file's."""
    saved = {k: v for k, v in config.items() if k != "trust_remote_code"}
    (Path(directory) / CONFIG_FILE).write_text(json.dumps(saved, indent=2, sort_keys=True))


def read_config(directory: str | Path) -> dict[str, Any]:
    """The saved constructor keyword arguments, minus any ``trust_remote_code`` (ignored: only
    the caller of ``load`` grants it). Raises ModelFormatError unless the file holds a JSON object."""
    from textransfer._modelfolder import read_json_object

    kwargs = read_json_object(Path(directory) / CONFIG_FILE)
    kwargs.pop("trust_remote_code", None)
    return kwargs


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
