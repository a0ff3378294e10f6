"""Head contracts: a head maps ``(n, dim)`` float32 features to ``(n, k)`` class probabilities.

A head never knows which encoder feeds it. Two capabilities, checked by strategies:
:class:`ArrayHead` (fits itself on arrays, e.g. scikit-learn) and :class:`TorchHead` (an
``nn.Module`` trained by ``textransfer.training``, usable when fine-tuning too).

To add a head: subclass :class:`Head` in a new module, decorate with ``@register_head("name")``,
import the module in ``heads/__init__.py``; implement ``build``, ``predict_proba``, ``config``,
``save`` and ``load``. The contract tests cover it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from textransfer._modelfolder import RESAVE_FIX, ModelFormatError, read_json_object
from textransfer._registry import Registry


def _load_builtin_heads() -> None:
    import textransfer.heads  # noqa: F401


HEADS: Registry[Head] = Registry("head", loader=_load_builtin_heads)
register_head = HEADS.register

CONFIG_FILE = "head.json"
WEIGHTS_FILE = "head.safetensors"


class Head(ABC):
    """Base class of classifier heads."""

    registry_name: ClassVar[str]

    @property
    def name(self) -> str:
        return type(self).registry_name

    @abstractmethod
    def build(self, in_dim: int, num_classes: int) -> None:
        """Allocates parameters for ``in_dim`` features and ``num_classes`` classes."""

    @abstractmethod
    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 ``(n, num_classes)``, for float32 ``(n, in_dim)``."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-serialisable)."""

    @abstractmethod
    def save(self, directory: str | Path) -> None:
        """Writes config JSON and weights (safetensors) into ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: str | Path) -> Head:
        """Rebuilds a head saved by :meth:`save`. The sizes in the JSON are checked against the
        safetensors header before anything is allocated (:class:`ModelFormatError` otherwise)."""

    def dims(self) -> tuple[int | None, int | None]:
        """``(in_dim, num_classes)`` the head is built for; None where not known yet."""
        return None, None

    def _write_config(self, directory: Path, **extra: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"config": self.config(), **extra}
        (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))

    @staticmethod
    def _read_config(directory: Path) -> dict[str, Any]:
        """The saved JSON, checked to hold a ``config`` object (ModelFormatError otherwise)."""
        path = Path(directory) / CONFIG_FILE
        meta = read_json_object(path)
        if not isinstance(meta.get("config"), dict):
            raise ModelFormatError(f"{path} has no 'config' object; {RESAVE_FIX}")
        return meta

    @staticmethod
    def _read_count(meta: dict[str, Any], key: str, directory: Path) -> int:
        """``meta[key]`` as a positive int (a size saved in head.json), else ModelFormatError."""
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelFormatError(
                f"{Path(directory) / CONFIG_FILE}: {key} must be a positive integer, got {value!r}; "
                + RESAVE_FIX
            )
        return value


@runtime_checkable
class ArrayHead(Protocol):
    """A head that fits itself on feature arrays (integer class ids ``y``; ``num_classes``: the
    number of classes when ``y`` may lack the last ones, else None)."""

    def fit(self, features: np.ndarray, y: np.ndarray, num_classes: int | None = None) -> Any: ...


@runtime_checkable
class TorchHead(Protocol):
    """A head that is an ``nn.Module``: ``module(features, labels=None) -> {"logits", "loss"}``."""

    module: Any


@runtime_checkable
class PrototypeHead(Protocol):
    """A head that classifies by similarity to one given vector per class (``zero_shot``)."""

    def set_prototypes(self, prototypes: np.ndarray) -> None: ...


def create_head(name: str, **kwargs: Any) -> Head:
    """Builds a registered head by name (see :func:`list_heads`).

    Example:
        >>> head = create_head("mlp", hidden=128)  # doctest: +SKIP
    """
    return HEADS.create(name, **kwargs)


def list_heads() -> list[str]:
    """Names of the registered heads."""
    return HEADS.names()
