"""Logistic regression head (scikit-learn), saved as arrays + JSON — never pickled."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from textransfer._modelfolder import (
    RESAVE_FIX,
    ModelFormatError,
    check_tensor_shapes,
    tensor_shapes,
)
from textransfer.heads.base import CONFIG_FILE, WEIGHTS_FILE, Head, register_head


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, k)`` scores, float32."""
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@register_head("logreg")
class LogisticRegressionHead(Head):
    """Multinomial (or binary) logistic regression fitted with scikit-learn's lbfgs.

    Only for frozen features (it cannot be trained jointly with an encoder). Prediction runs in
    numpy from the stored coefficients, so a loaded head predicts exactly what it did before save.

    Args:
        C: inverse regularisation strength.
        max_iter: lbfgs iterations.
        class_weight: ``None`` or ``"balanced"``.
        standardize: scale features to unit variance first (folded into the stored weights).

    Example:
        >>> head = LogisticRegressionHead(C=1.0)
        >>> head.fit(np.eye(4, dtype=np.float32), np.array([0, 1, 0, 1])).predict_proba(np.eye(4)).shape
        (4, 2)
    """

    def __init__(
        self,
        C: float = 1.0,
        max_iter: int = 2000,
        class_weight: Literal["balanced"] | None = None,
        standardize: bool = False,
    ) -> None:
        if C <= 0:
            raise ValueError(f"logreg: C must be > 0, got {C}")
        self.C = float(C)
        self.max_iter = int(max_iter)
        self.class_weight = class_weight
        self.standardize = standardize
        self.num_classes: int | None = None
        self.coef: np.ndarray | None = None  # (k, dim), or (1, dim) for two classes
        self.intercept: np.ndarray | None = None

    def build(self, in_dim: int, num_classes: int) -> None:
        self.num_classes = num_classes

    def fit(self, features: np.ndarray, y: np.ndarray, num_classes: int | None = None) -> LogisticRegressionHead:
        """Fits on ``(n, dim)`` float32 features and ``(n,)`` integer class ids."""
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y)
        k = num_classes or int(y.max()) + 1
        self.build(features.shape[1], k)
        if len(np.unique(y)) < 2:
            raise ValueError(
                f"logreg: the training data has a single class ({np.unique(y).tolist()}); "
                "a classifier needs at least two"
            )
        x = features.astype(np.float64)
        mean = np.zeros(x.shape[1])
        scale = np.ones(x.shape[1])
        if self.standardize:
            mean, scale = x.mean(axis=0), x.std(axis=0)
            scale[scale == 0] = 1.0
            x = (x - mean) / scale
        model = LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight)
        model.fit(x, y)
        coef = model.coef_ / scale
        intercept = model.intercept_ - coef @ mean
        if len(model.classes_) != k:
            # Some class is absent from y: expand to all k classes with -inf-like scores.
            full_coef = np.zeros((k, x.shape[1]))
            full_int = np.full(k, -1e4)
            if coef.shape[0] == 1:  # binary over two of k classes
                coef = np.vstack([-coef, coef]) / 2
                intercept = np.array([-intercept[0], intercept[0]]) / 2
            full_coef[model.classes_] = coef
            full_int[model.classes_] = intercept
            coef, intercept = full_coef, full_int
        # Contiguous copies: safetensors writes the raw buffer, whatever the strides.
        self.coef = np.ascontiguousarray(coef, dtype=np.float32)
        self.intercept = np.ascontiguousarray(intercept, dtype=np.float32)
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        if self.coef is None or self.intercept is None:
            raise RuntimeError("logreg: fit the head before predicting")
        scores = features.astype(np.float32) @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:  # binary: sigmoid of one score
            p1 = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1).astype(np.float32)
        return softmax(scores)

    def config(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "max_iter": self.max_iter,
            "class_weight": self.class_weight,
            "standardize": self.standardize,
        }

    def save(self, directory: str | Path) -> None:
        from safetensors.numpy import save_file

        if self.coef is None or self.intercept is None:
            raise RuntimeError("logreg: nothing to save, the head is not fitted")
        d = Path(directory)
        self._write_config(d, num_classes=self.num_classes)
        save_file({"coef": self.coef, "intercept": self.intercept}, str(d / WEIGHTS_FILE))

    def dims(self) -> tuple[int | None, int | None]:
        return (None if self.coef is None else int(self.coef.shape[1])), self.num_classes

    @classmethod
    def load(cls, directory: str | Path) -> LogisticRegressionHead:
        from safetensors.numpy import load_file

        d = Path(directory)
        meta = cls._read_config(d)
        k = cls._read_count(meta, "num_classes", d)
        weights = d / WEIGHTS_FILE
        shapes = tensor_shapes(weights)
        coef = shapes.get("coef")
        if coef is None or len(coef) != 2:
            raise ModelFormatError(
                f"{weights} must hold a 2-d tensor 'coef' (classes x features), found {shapes}; "
                + RESAVE_FIX
            )
        rows = 1 if k == 2 and coef[0] == 1 else k  # two classes: one score row (sigmoid)
        expected = {"coef": (rows, coef[1]), "intercept": (rows,)}
        check_tensor_shapes(weights, expected, source=d / CONFIG_FILE, found=shapes)
        head = cls(**meta["config"])
        head.num_classes = k
        arrays = load_file(str(weights))
        head.coef = np.ascontiguousarray(arrays["coef"], dtype=np.float32)
        head.intercept = np.ascontiguousarray(arrays["intercept"], dtype=np.float32)
        return head
