"""Cosine head: one prototype vector per class, scores = cosine similarity / temperature.

The prototypes are either class means of training features (:meth:`CosineHead.fit`, a nearest
class mean classifier that needs no tuning: a few-shot baseline) or embeddings of label
descriptions set by the ``zero_shot`` strategy (:meth:`CosineHead.set_prototypes`). Saved as
safetensors + JSON, never pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from textransfer._modelfolder import RESAVE_FIX, ModelFormatError, tensor_shapes
from textransfer.heads.base import WEIGHTS_FILE, Head, register_head
from textransfer.heads.logreg import softmax


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@register_head("cosine")
class CosineHead(Head):
    """``p(c | x) = softmax_c(cos(x, prototype_c) / temperature)``.

    Args:
        temperature: divides the cosine similarities before the softmax; smaller is more
            confident (it never changes which class wins).

    Example:
        >>> head = CosineHead()
        >>> x, y = np.array([[1, 0], [0, 1]], np.float32), np.array([0, 1])
        >>> int(head.fit(x, y).predict_proba(np.array([[2, 0.1]], np.float32)).argmax())
        0
    """

    def __init__(self, temperature: float = 0.05) -> None:
        if not temperature > 0:
            raise ValueError(f"cosine: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.prototypes: np.ndarray | None = None  # (k, dim), unit rows

    def build(self, in_dim: int, num_classes: int) -> None:
        self.prototypes = np.zeros((int(num_classes), int(in_dim)), dtype=np.float32)

    def set_prototypes(self, prototypes: np.ndarray) -> None:
        """Uses ``(k, dim)`` vectors (e.g. embedded label descriptions) as the class prototypes."""
        p = np.asarray(prototypes, dtype=np.float32)
        if p.ndim != 2 or len(p) < 2:
            raise ValueError(f"cosine: prototypes must be (k >= 2, dim), got shape {p.shape}")
        self.prototypes = np.ascontiguousarray(_unit_rows(p))

    def fit(
        self, features: np.ndarray, y: np.ndarray, num_classes: int | None = None
    ) -> CosineHead:
        """Prototypes = mean of the unit-normalised ``(n, dim)`` features of each class id in ``y``."""
        y = np.asarray(y)
        k = num_classes or int(y.max()) + 1
        x = _unit_rows(features)
        protos = np.zeros((k, x.shape[1]), dtype=np.float32)
        for c in range(k):
            if np.any(y == c):
                protos[c] = x[y == c].mean(axis=0)
        self.prototypes = np.ascontiguousarray(_unit_rows(protos))
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        if self.prototypes is None:
            raise RuntimeError("cosine: fit the head (or set its prototypes) before predicting")
        return softmax(_unit_rows(features) @ self.prototypes.T / self.temperature)

    def config(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    def save(self, directory: str | Path) -> None:
        from safetensors.numpy import save_file

        if self.prototypes is None:
            raise RuntimeError("cosine: nothing to save, the head has no prototypes")
        d = Path(directory)
        self._write_config(d)
        save_file({"prototypes": self.prototypes}, str(d / WEIGHTS_FILE))

    def dims(self) -> tuple[int | None, int | None]:
        if self.prototypes is None:
            return None, None
        return int(self.prototypes.shape[1]), int(self.prototypes.shape[0])

    @classmethod
    def load(cls, directory: str | Path) -> CosineHead:
        from safetensors.numpy import load_file

        d = Path(directory)
        head = cls(**cls._read_config(d)["config"])
        weights = d / WEIGHTS_FILE
        shapes = tensor_shapes(weights)
        protos = shapes.get("prototypes")
        if set(shapes) != {"prototypes"} or protos is None or len(protos) != 2 or protos[0] < 2:
            raise ModelFormatError(
                f"{weights} must hold exactly one 2-d tensor 'prototypes' (classes >= 2 x "
                f"features), found {shapes}; {RESAVE_FIX}"
            )
        head.prototypes = np.ascontiguousarray(load_file(str(weights))["prototypes"], dtype=np.float32)
        return head
