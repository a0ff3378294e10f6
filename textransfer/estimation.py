"""How accurate will a saved model be on texts nobody labeled? The model-level front of
:mod:`textransfer.evaluation.label_free`.

:func:`estimate_target_accuracy` runs the model on labeled *source validation* data (rows like
those it was trained on, but not trained on) and on the *target* texts, and turns the two sets of
probabilities into label-free estimates of the target accuracy (COT by default; COTT, DoC,
ATC-NE, ATC-MC, AC and their average beside it), all computed after temperature scaling fitted on the source
validation rows. Data is read like ``textransfer evaluate`` reads it: a file (in chunks), a
:class:`~textransfer.data.LabeledTexts` or a ``(texts, labels)`` pair. When the target happens
to have labels, the true accuracy and the error of each estimate come with it.

Example:
    >>> import textransfer
    >>> est = textransfer.estimate_target_accuracy(  # doctest: +SKIP
    ...     "runs/movies_to_products/models/minilm-sentence+frozen/movies_to_products",
    ...     source_val="movies_val.csv", target="new_reviews.txt")
    >>> est["estimate"], est["estimates"]["doc"]  # doctest: +SKIP
    (0.812, 0.797)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textransfer.classifier import Classifier
from textransfer.evaluation.label_free import (
    CALIBRATIONS,
    DEFAULT_METHOD,
    METHODS,
    MIN_ROWS,
    Calibration,
    Method,
    label_free_estimates,
)
from textransfer.model_outputs import Data, model_probabilities

if TYPE_CHECKING:
    from textransfer.onnx_classifier import OnnxClassifier

__all__ = ["estimate_target_accuracy", "label_free_metrics", "model_probabilities"]



def _source_val(
    model: Classifier | OnnxClassifier,
    source_val: Data,
    text_column: str,
    label_column: str | None,
    batch_size: int,
    chunk_size: int,
    label_map: dict[Any, Any] | None = None,
    delimiter: str | None = None,
) -> tuple[str, np.ndarray, np.ndarray]:
    # One delimiter serves a CSV target and a CSV source file; a JSONL / Parquet source ignores it.
    delimited = isinstance(source_val, (str, os.PathLike)) and Path(source_val).suffix.lower() in (".csv", ".tsv")
    name, y, proba = model_probabilities(
        model,
        source_val,
        text_column=text_column,
        label_column=label_column,
        batch_size=batch_size,
        chunk_size=chunk_size,
        label_map=label_map,
        delimiter=delimiter if delimited else None,
    )
    if y is None:
        raise ValueError(
            f"source validation data {name} has no labels: it must be labeled source-domain rows the model "
            "was not trained on (a file with a `label` column, or name its label column: "
            "source_val_label_column, --source-val-label-column)"
        )
    return name, y, proba


def saved_source_val(model: Any) -> tuple[str, np.ndarray, np.ndarray]:
    """``(description, labels, probabilities)`` of the source validation outputs saved with
    ``model``; a ValueError saying how to give them when it has none."""
    saved = getattr(model, "calibration", None)
    if saved is None:
        raise ValueError(
            "this model was saved without source validation outputs (models trained by `textransfer run` "
            "with a validation split, or saved by `textransfer crossdomain`, carry them): pass source_val, "
            "labeled source-domain rows it was not trained on (CLI: --source-val FILE)"
        )
    return f"saved with the model: {saved['source']}", saved["labels"], saved["probabilities"]


def label_free_metrics(
    model: Classifier | OnnxClassifier,
    source_val: Data | None,
    target_proba: np.ndarray,
    target_labels: np.ndarray | None = None,
    *,
    method: Method = DEFAULT_METHOD,
    text_column: str = "text",
    label_column: str | None = None,
    batch_size: int = 32,
    chunk_size: int = 10_000,
    min_rows: int = MIN_ROWS,
    calibration: Calibration = "temperature",
    label_map: dict[Any, Any] | None = None,
    delimiter: str | None = None,
) -> dict[str, Any]:
    """The label-free estimates of a model whose target probabilities are already computed
    (``label_map``, ``delimiter``: for ``source_val``, as in :func:`textransfer.evaluate`).
    ``source_val`` None: the source validation outputs saved with the model
    (:meth:`Classifier.set_calibration <textransfer.classifier.Classifier.set_calibration>`).

    Returns:
        :func:`~textransfer.evaluation.label_free.label_free_estimates`' dict plus ``"method"``,
        ``"estimate"`` (that method's), ``"source_val"`` (its name) and, with ``target_labels``,
        ``"true_accuracy"`` and ``"abs_error"`` per method; ``{"missing": reason, ...}`` when
        either side has fewer than ``min_rows`` rows.
    """
    if method not in METHODS:
        raise ValueError(f"unknown label-free method {method!r}: use one of {', '.join(METHODS)}")
    if calibration not in CALIBRATIONS:
        raise ValueError(
            f"unknown calibration {calibration!r}: use one of {', '.join(CALIBRATIONS)}"
        )
    if source_val is None:
        name, y_val, p_val = saved_source_val(model)
    else:
        name, y_val, p_val = _source_val(
            model, source_val, text_column, label_column, batch_size, chunk_size, label_map, delimiter
        )
    out: dict[str, Any] = {
        "method": method,
        "source_val": name,
        **label_free_estimates(p_val, y_val, target_proba, min_rows, calibration),
    }
    if "missing" in out:
        return out
    out["estimate"] = out["estimates"][method]
    if target_labels is not None:
        true = float(np.mean(np.asarray(target_proba).argmax(axis=1) == target_labels))
        out["true_accuracy"] = true
        out["abs_error"] = {m: abs(v - true) for m, v in out["estimates"].items()}
    return out


def estimate_target_accuracy(
    model: Classifier | OnnxClassifier | str | os.PathLike[str],
    source_val: Data | None,
    target: Data,
    *,
    method: Method = DEFAULT_METHOD,
    text_column: str = "text",
    label_column: str | None = None,
    source_val_text_column: str | None = None,
    source_val_label_column: str | None = None,
    label_map: dict[Any, Any] | None = None,
    delimiter: str | None = None,
    batch_size: int = 32,
    chunk_size: int = 10_000,
    min_rows: int = MIN_ROWS,
    calibration: Calibration = "temperature",
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Estimates a model's accuracy on target texts without their labels (COT by default).

    Args:
        model: a :class:`~textransfer.classifier.Classifier`, an ONNX export loaded by
            :func:`textransfer.load`, or a folder of either.
        source_val: labeled source-domain rows the model was not trained on (a file with a label
            column, a LabeledTexts, or a ``(texts, labels)`` pair): they calibrate the estimate.
            None: the source validation outputs saved with the model (``textransfer run`` with a
            validation split and ``textransfer crossdomain`` save them).
        target: the target texts (a file, LabeledTexts or ``(texts, None)``); labels, if any,
            are only used to report the true accuracy beside the estimate.
        method: ``"cot"`` (default), ``"cott"``, ``"doc"``, ``"atc-ne"``, ``"atc-mc"``, ``"ac"`` or
            ``"average"`` for ``"estimate"``; all of them are returned.
        text_column: the files' text column.
        label_column: the files' label column (default ``label``); required in ``source_val``.
        source_val_text_column: the ``source_val`` file's text column when it is named
            otherwise than the target file's (default: ``text_column``).
        source_val_label_column: the ``source_val`` file's label column (default:
            ``label_column``, else ``label``).
        label_map: renames the files' labels to the model's (see :func:`textransfer.evaluate`).
        delimiter: the field separator of ``.csv``/``.tsv`` files that use another one.
        batch_size: encoder batch size.
        chunk_size: rows read and predicted at a time.
        min_rows: fewer source validation or target rows than this is an error.
        calibration: ``"temperature"`` (default): temperature-scale the probabilities first,
            with the temperature fitted on ``source_val``; ``"none"``: use them as the model gives them.
        trust_remote_code: allow Python code shipped in a model folder to run.

    Returns:
        ``{"method", "estimate", "estimates": {method: accuracy}, "source_val_accuracy",
        "n_source_val", "n_target", "source_val", "target", ...}`` plus ``"true_accuracy"`` and
        ``"abs_error"`` when the target has labels.

    Raises:
        ValueError: source validation data without labels, too few rows, an unknown method.
    """
    if isinstance(model, (str, os.PathLike)):
        from textransfer.classifier import load

        model = load(os.fspath(model), trust_remote_code=trust_remote_code)
    name, y, proba = model_probabilities(
        model,
        target,
        text_column=text_column,
        label_column=label_column,
        batch_size=batch_size,
        chunk_size=chunk_size,
        label_map=label_map,
        delimiter=delimiter,
    )
    out = label_free_metrics(
        model,
        source_val,
        proba,
        y,
        method=method,
        text_column=source_val_text_column or text_column,
        label_column=source_val_label_column or label_column,
        batch_size=batch_size,
        chunk_size=chunk_size,
        min_rows=min_rows,
        calibration=calibration,
        label_map=label_map,
        delimiter=delimiter,
    )
    if "missing" in out:
        raise ValueError(out["missing"])
    return {**out, "target": name}
