"""A saved model's class probabilities on data read in chunks: what ``textransfer evaluate`` and
the label-free accuracy estimates (:mod:`textransfer.estimation`) both score.

Files are read with the reader of ``textransfer predict --input`` (.csv .tsv .jsonl .parquet
.txt); per row only the true class id (when the data has labels) and the probability row are
kept, never the texts, so memory stays flat in the number of rows. Every bad row is an error
naming the file, the row and the line.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textransfer._progress import progress
from textransfer.classifier import Classifier, truncated_inputs
from textransfer.data.labeled import LabeledTexts

if TYPE_CHECKING:
    from textransfer.onnx_classifier import OnnxClassifier

__all__ = ["Data", "check_label_map", "label_key", "model_probabilities"]

logger = logging.getLogger("textransfer.evaluate")

Data = str | os.PathLike[str] | LabeledTexts | tuple[Sequence[str], Sequence[Any] | None]
_SHOWN = 5  # how many unknown labels an error names


# -- reading ----------------------------------------------------------------------------------


@dataclass
class _Chunk:
    texts: list[str]
    labels: list[Any] | None
    offset: int  # rows before this chunk (for 1-based row numbers in messages)
    lines: Sequence[int] | None = None  # the file line of each row, when known


def label_key(value: Any) -> str | None:
    """The string a label is matched by (``1``, ``1.0`` and ``"1"`` all match model label 1);
    None for a missing label."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # numpy / pandas scalars
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text if text.strip() else None


def _check_file(path: Path) -> None:
    """Missing, folder or empty input: one clear error before any parsing."""
    if not path.exists():
        raise FileNotFoundError(f"input file not found: {path} (cwd: {Path.cwd()})")
    if path.is_dir():
        raise ValueError(f"{path} is a directory: pass a data file (.csv .tsv .jsonl .parquet .txt)")
    with path.open("rb") as f:
        while block := f.read(1 << 16):
            if block.strip():
                return
    raise ValueError(f"{path}: the file is empty. Fix: pass a file with a header line and data rows")


def _file_chunks(path: Path, text_column: str, label_column: str | None, chunk_size: int,
                 delimiter: str | None = None) -> Iterator[_Chunk]:
    """Chunks of a file read by ``predict --input``'s reader; ``label_column`` None: use
    ``label`` when the file has it, else read the file as unlabeled."""
    from textransfer.prediction import read_chunks

    _check_file(path)
    wanted = label_column or "label"
    labeled: bool | None = None
    offset = 0
    for chunk in read_chunks(path, text_column, chunk_size, delimiter):
        if labeled is None:
            _check_text_column(path, chunk.columns, text_column)
            labeled = wanted in chunk.columns
            if not labeled and label_column is not None:
                raise ValueError(
                    f"{path}: no label column {label_column!r}; columns found: "
                    f"{', '.join(map(str, chunk.columns))}. Pass --label-column NAME, or leave it out "
                    "to evaluate without labels (a --source-val file's own label column: "
                    "--source-val-label-column)"
                )
        texts = chunk.column(text_column)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                what = "missing" if t is None else f"not text ({t!r:.40})"
                raise ValueError(
                    f"{path}: {_row_note(chunk.lines, i, offset)}: column {text_column!r} is {what}. "
                    "Fix: fill or remove missing texts"
                )
        labels = chunk.column(wanted) if labeled else None
        yield _Chunk(texts, labels, offset, chunk.lines)
        offset += len(texts)
    if offset == 0:
        raise ValueError(f"{path}: the file has no data rows (only a header?). Fix: add rows to evaluate")


def _check_text_column(path: Path, columns: list[str], text_column: str) -> None:
    if text_column not in columns:
        raise ValueError(
            f"{path}: no column {text_column!r}; columns found: {', '.join(map(str, columns)) or '(none)'}. "
            "Pass --text-column NAME (API: text_column=NAME)"
        )


def _row_note(lines: Sequence[int] | None, i: int, offset: int) -> str:
    """``row 3 (line 4)``: the 1-based data row, and the file line when it is known."""
    note = f"row {offset + i + 1}"
    return note if lines is None else f"{note} (line {lines[i]})"


def _memory_chunks(data: LabeledTexts, chunk_size: int) -> Iterator[_Chunk]:
    if len(data) == 0:
        raise ValueError("nothing to evaluate: the data has no rows")
    for start in range(0, len(data), chunk_size):
        stop = start + chunk_size
        labels = None if data.labels is None else data.labels[start:stop]
        yield _Chunk(list(data.texts[start:stop]), labels, start)


def _as_source(data: Any) -> tuple[str, LabeledTexts | Path]:
    """``(name for reports, LabeledTexts or file path)`` of what :func:`evaluate` was given."""
    if isinstance(data, LabeledTexts):
        return f"(in memory: {data.domain}, {len(data)} rows)", data
    if isinstance(data, (str, os.PathLike)):
        return str(data), Path(data)
    if isinstance(data, tuple) and len(data) == 2:
        texts, labels = data
        lt = LabeledTexts(list(texts), None if labels is None else list(labels))
        return f"(in memory: {len(lt)} rows)", lt
    raise TypeError(
        "data must be a file path, a LabeledTexts or a (texts, labels) pair, "
        f"got {type(data).__name__}"
    )


# -- scoring ---------------------------------------------------------------------------------


def check_label_map(label_map: Any, model_labels: Sequence[Any]) -> dict[str, str]:
    """``label_map`` (the data's labels -> the model's, matched by their string form) with string
    keys and values; an error naming a target that is not a model label."""
    if not isinstance(label_map, dict):
        raise TypeError(f"label_map must be a dict of the data's labels to the model's, got {type(label_map).__name__}")
    known = {str(label_key(lab)) for lab in model_labels}
    out = {str(label_key(k)): str(label_key(v)) for k, v in label_map.items()}
    wrong = sorted(v for v in set(out.values()) if v not in known)
    if wrong:
        raise ValueError(
            f"label_map maps to {', '.join(map(repr, wrong))}, not a label of the model "
            f"({', '.join(map(str, model_labels))}): map each of the data's labels to one of those"
        )
    return out


def _encode_labels(chunk: _Chunk, index: dict[str, int], model_labels: Sequence[Any], where: str,
                   label_map: dict[str, str] | None = None) -> np.ndarray:
    """Class ids of a chunk's labels (renamed by ``label_map`` first); a clear error for missing
    labels or unknown ones."""
    keys: list[str] = []
    for i, v in enumerate(chunk.labels or []):
        k = label_key(v)
        if k is None:
            raise ValueError(
                f"{where}: {_row_note(chunk.lines, i, chunk.offset)} has no label. Fix: fill or remove "
                "it (or evaluate without the label column)"
            )
        keys.append(label_map.get(k, k) if label_map else k)
    unknown = sorted({k for k in keys if k not in index})
    if unknown:
        first = _row_note(chunk.lines, next(i for i, k in enumerate(keys) if k not in index), chunk.offset)
        shown = ", ".join(repr(u) for u in unknown[:_SHOWN]) + (" ..." if len(unknown) > _SHOWN else "")
        raise ValueError(
            f"{where}: labels not known to the model: {shown} (model labels: "
            f"{', '.join(map(str, model_labels))}); the first is at {first}. Fix: map them to the "
            f"model's labels (--label-map {unknown[0]}={model_labels[0]},...; API: label_map={{...}}) "
            "or drop those rows"
        )
    return np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))


def _collect(
    clf: Classifier | OnnxClassifier, chunks: Iterator[_Chunk], where: str, batch_size: int,
    label_map: dict[str, str] | None = None,
    stats: dict[str, Any] | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Runs the model chunk by chunk; returns ``(y_true or None, proba (n, k) float32)``; fills
    ``stats["truncated"]`` (see :func:`model_probabilities`)."""
    from textransfer.distributed import sharded

    proba_of = sharded(partial(clf.predict_proba, batch_size=batch_size))
    index = {str(label_key(lab)): i for i, lab in enumerate(clf.labels)}
    ys: list[np.ndarray] = []
    probas: list[np.ndarray] = []
    labeled: bool | None = None
    n = 0
    with progress(desc="evaluating", unit="row") as bar:
        for chunk in chunks:
            labeled = chunk.labels is not None if labeled is None else labeled
            if labeled:  # before predicting: a bad label fails fast, not after an hour of encoding
                ys.append(_encode_labels(chunk, index, clf.labels, where, label_map))
            probas.append(np.asarray(proba_of(chunk.texts), dtype=np.float32))
            if stats is not None:
                _count_truncated(clf, chunk.texts, stats)
            n += len(chunk.texts)
            bar.update(len(chunk.texts))
            logger.debug("%d rows evaluated", n)  # the bar shows it; a line per chunk would repeat
    k = len(clf.labels)
    proba = np.concatenate(probas) if probas else np.zeros((0, k), dtype=np.float32)
    return (np.concatenate(ys) if labeled else None), proba


def _count_truncated(clf: Any, texts: list[str], stats: dict[str, Any]) -> None:
    found = truncated_inputs(clf, texts)
    if found is not None:
        seen = stats.setdefault("truncated", {"texts": 0, "limit": found[1]})
        seen["texts"] += found[0]


def model_probabilities(
    model: Classifier | OnnxClassifier,
    data: Data,
    *,
    text_column: str = "text",
    label_column: str | None = None,
    batch_size: int = 32,
    chunk_size: int = 10_000,
    label_map: dict[Any, Any] | None = None,
    delimiter: str | None = None,
    stats: dict[str, Any] | None = None,
) -> tuple[str, np.ndarray | None, np.ndarray]:
    """``(name of the data, class ids or None, (n, k) float32 probabilities)`` of ``model`` on
    ``data``: a file path, LabeledTexts or a ``(texts, labels)`` pair. A file's labels are read
    from ``label_column``, else from a ``label`` column when there is one; ``label_map`` renames
    them to the model's (``{"0": "negative", "1": "positive"}``; labels it does not name are kept);
    ``delimiter`` is the separator of a ``.csv``/``.tsv`` file that uses another one. A ``stats``
    dict gets ``"truncated": {"texts": n, "limit": tokens}``, the texts longer than the encoder's
    token limit (which it saw the beginning of), when the encoder has one."""
    mapping = None if label_map is None else check_label_map(label_map, model.labels)
    name, source = _as_source(data)
    if isinstance(source, Path):
        chunks = _file_chunks(source, text_column, label_column, chunk_size, delimiter)
    else:
        chunks = _memory_chunks(source, chunk_size)
    y, proba = _collect(model, chunks, name, batch_size, mapping, stats)
    return name, y, proba
