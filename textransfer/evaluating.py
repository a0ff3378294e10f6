"""Evaluate a saved model on a file (or in-memory data), the way a practitioner checks a model
before using it: ``textransfer evaluate MODEL --input FILE`` and :func:`evaluate`.

The measures are those of the cross-domain report (accuracy, macro-F1, per-class precision and
recall, confusion matrix, ECE with a reliability diagram, 95% bootstrap intervals and the
majority-class baseline), computed by :mod:`textransfer.evaluation`. Files are read in chunks
with the reader of ``textransfer predict --input``; per row only the true class id and the
probability row are kept (never the texts), so memory stays flat in the number of rows.

Without a label column the input is scored as unlabeled: the predicted label distribution and
the mean confidence, marked as such (no accuracy can be computed without labels). With labeled
source validation data (``--source-val FILE``: rows like the training data, not trained on) the
target accuracy is also *estimated* without labels (ATC-NE, ATC-MC, DoC; see
:mod:`textransfer.estimation`), and shown beside the true accuracy when the input has labels.

Output directory (optional)::

    metrics.json            everything measured ("written_by": "textransfer evaluate")
    report.md               the same as tables, with the figures
    confusion_matrix.png    row-normalised, with counts (labeled data only)
    reliability.png         reliability diagram with bin counts (labeled data only)

Files are written to a temporary name and renamed; a non-empty folder that ``textransfer
evaluate`` did not write is refused, never emptied.
"""

from __future__ import annotations

import json
import logging
import math
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from textransfer._progress import progress
from textransfer.classifier import Classifier
from textransfer.data.labeled import LabeledTexts

__all__ = ["MARKER", "EvaluationResult", "evaluate", "report_markdown", "summary_lines"]

logger = logging.getLogger("textransfer.evaluate")

MARKER = "textransfer evaluate"  # metrics.json["written_by"]: the folder is ours to rewrite
FORMAT = 1
_OUR_FILES = ("metrics.json", "report.md", "confusion_matrix.png", "reliability.png")
_SHOWN = 5  # how many unknown labels an error names


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns.

    Attributes:
        metrics: everything measured (what ``metrics.json`` holds); ``metrics["labeled"]`` says
            whether accuracy and the rest could be computed.
        output_dir: where the files were written (None: nothing written).
        files: the files written.
    """

    metrics: dict[str, Any]
    output_dir: Path | None = None
    files: list[Path] = field(default_factory=list)


# -- inputs ----------------------------------------------------------------------------------


@dataclass
class _Chunk:
    texts: list[str]
    labels: list[Any] | None
    offset: int  # rows before this chunk (for 1-based row numbers in messages)
    lines: Sequence[int] | None = None  # the file line of each row, when known


def _label_key(value: Any) -> str | None:
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


def _file_chunks(path: Path, text_column: str, label_column: str | None, chunk_size: int) -> Iterator[_Chunk]:
    """Chunks of a file read by ``predict --input``'s reader; ``label_column`` None: use
    ``label`` when the file has it, else read the file as unlabeled."""
    from textransfer.prediction import read_chunks

    _check_file(path)
    wanted = label_column or "label"
    labeled: bool | None = None
    offset = 0
    for chunk in read_chunks(path, text_column, chunk_size):
        if labeled is None:
            _check_text_column(path, chunk.columns, text_column)
            labeled = wanted in chunk.columns
            if not labeled and label_column is not None:
                raise ValueError(
                    f"{path}: no label column {label_column!r}; columns found: "
                    f"{', '.join(map(str, chunk.columns))}. Pass --label-column NAME, or leave it out "
                    "to evaluate without labels"
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


def _encode_labels(chunk: _Chunk, index: dict[str, int], model_labels: Sequence[Any], where: str) -> np.ndarray:
    """Class ids of a chunk's labels; a clear error for missing labels or unknown ones."""
    keys = [_label_key(v) for v in chunk.labels or []]
    for i, k in enumerate(keys):
        if k is None:
            raise ValueError(
                f"{where}: {_row_note(chunk.lines, i, chunk.offset)} has no label. Fix: fill or remove "
                "it (or evaluate without the label column)"
            )
    unknown = sorted({k for k in keys if k not in index})
    if unknown:
        first = _row_note(chunk.lines, next(i for i, k in enumerate(keys) if k not in index), chunk.offset)
        shown = ", ".join(repr(u) for u in unknown[:_SHOWN]) + (" ..." if len(unknown) > _SHOWN else "")
        raise ValueError(
            f"{where}: labels not known to the model: {shown} (model labels: "
            f"{', '.join(map(str, model_labels))}); the first is at {first}. Fix: map them to the "
            "model's labels or drop those rows"
        )
    return np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))


def _collect(
    clf: Classifier, chunks: Iterator[_Chunk], where: str, batch_size: int
) -> tuple[np.ndarray | None, np.ndarray]:
    """Runs the model chunk by chunk; returns ``(y_true or None, proba (n, k) float32)``."""
    from textransfer.training.sharding import sharded

    proba_of = sharded(partial(clf.predict_proba, batch_size=batch_size))
    index = {str(_label_key(lab)): i for i, lab in enumerate(clf.labels)}
    ys: list[np.ndarray] = []
    probas: list[np.ndarray] = []
    labeled: bool | None = None
    n = 0
    with progress(desc="evaluating", unit="row") as bar:
        for chunk in chunks:
            labeled = chunk.labels is not None if labeled is None else labeled
            if labeled:  # before predicting: a bad label fails fast, not after an hour of encoding
                ys.append(_encode_labels(chunk, index, clf.labels, where))
            probas.append(np.asarray(proba_of(chunk.texts), dtype=np.float32))
            n += len(chunk.texts)
            bar.update(len(chunk.texts))
            logger.debug("%d rows evaluated", n)  # the bar shows it; a line per chunk would repeat
    k = len(clf.labels)
    proba = np.concatenate(probas) if probas else np.zeros((0, k), dtype=np.float32)
    return (np.concatenate(ys) if labeled else None), proba


def _labeled_metrics(
    y: np.ndarray, proba: np.ndarray, labels: Sequence[Any], n_boot: int, ece_bins: int, seed: int
) -> dict[str, Any]:
    from textransfer.evaluation.calibration import reliability_bins
    from textransfer.evaluation.scoring import score_predictions

    m = score_predictions(y, proba, labels, n_boot=n_boot, ece_bins=ece_bins, seed=seed).metrics
    m["labels"] = [str(lab) for lab in labels]
    m["majority_class"] = str(labels[int(np.bincount(y, minlength=len(labels)).argmax())])
    m["reliability"] = reliability_bins(proba, y, ece_bins)
    m["ece_bins"] = ece_bins
    m["n_boot"] = n_boot
    m["mean_confidence"] = float(proba.max(axis=1).mean())
    m.update(_predicted(proba, labels))
    return m


def _predicted(proba: np.ndarray, labels: Sequence[Any]) -> dict[str, Any]:
    counts = np.bincount(proba.argmax(axis=1), minlength=len(labels)) if len(proba) else np.zeros(len(labels), int)
    n = max(1, int(counts.sum()))
    return {
        "predicted": {str(lab): {"count": int(c), "fraction": float(c / n)} for lab, c in zip(labels, counts, strict=True)},
    }


def _unlabeled_metrics(proba: np.ndarray, labels: Sequence[Any]) -> dict[str, Any]:
    conf = proba.max(axis=1)
    return {
        "n": int(len(proba)),
        "labels": [str(lab) for lab in labels],
        "note": "no labels: the predicted label distribution and confidences only; nothing here is an accuracy",
        "mean_confidence": float(conf.mean()),
        "confidence_quartiles": [float(q) for q in np.percentile(conf, [25, 50, 75])],
        **_predicted(proba, labels),
    }


# -- output ----------------------------------------------------------------------------------


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _previous_files(out: Path) -> list[str] | None:
    """Our files listed by the previous evaluation in ``out``; None when ``out`` is new or empty.

    Raises:
        ValueError: ``out`` is a file, or a non-empty folder that ``textransfer evaluate`` did not
            write (its files are never touched).
    """
    if not out.exists():
        return None
    if not out.is_dir():
        raise ValueError(f"--output-dir {out} is a file: pass a folder (new, empty, or one written by evaluate)")
    entries = sorted(p.name for p in out.iterdir() if not _is_temp(p.name))
    if not entries:
        return None
    try:
        meta = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        ours = isinstance(meta, dict) and meta.get("written_by") == MARKER
    except (OSError, ValueError):
        ours = False
    if not ours:
        shown = ", ".join(entries[:_SHOWN]) + (" ..." if len(entries) > _SHOWN else "")
        raise ValueError(
            f"--output-dir {out} already holds files that textransfer evaluate did not write ({shown}); "
            "nothing was changed. Pass a new or empty folder"
        )
    return [f for f in meta.get("files", []) if f in _OUR_FILES]


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.parent / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def _write_outputs(out: Path, metrics: dict[str, Any], source: Path | None) -> list[Path]:
    previous = _previous_files(out)
    planned = ["metrics.json", "report.md"]
    if metrics["labeled"]:
        planned += ["confusion_matrix.png", "reliability.png"]
    if source is not None and source.resolve().parent == out.resolve() and source.name in planned:
        raise ValueError(f"the input {source} would be overwritten by the evaluation output: pick another --output-dir")
    out.mkdir(parents=True, exist_ok=True)
    metrics["files"] = planned
    # metrics.json first: from then on the folder carries our marker, so a rerun after a crash
    # may write into it again.
    _write_text(out / "metrics.json", json.dumps(metrics, indent=2, default=str) + "\n")
    if metrics["labeled"]:
        from textransfer.evaluation.plots import confusion_figure, reliability_figure, save_figure

        title = f"{metrics['model']} on {metrics['data']}"
        panel = (f"accuracy {metrics['accuracy']:.3f}, n={metrics['n']}", metrics["confusion_matrix"], metrics["labels"])
        save_figure(confusion_figure([panel], title), out / "confusion_matrix.png")
        series = [(f"ECE {metrics['ece']:.3f} ({metrics['ece_bins']} bins)", metrics["reliability"])]
        save_figure(reliability_figure(series, f"Reliability: {title}"), out / "reliability.png")
    _write_text(out / "report.md", report_markdown(metrics))
    for stale in set(previous or []) - set(planned):  # ours, from an earlier run, not rewritten now
        (out / stale).unlink(missing_ok=True)
    return [out / f for f in planned]


# -- report ----------------------------------------------------------------------------------


def _ci(m: dict[str, Any], key: str) -> str:
    ci = m.get(f"{key}_ci95")
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "–"


_NAMES = {"atc-ne": "ATC-NE", "atc-mc": "ATC-MC", "doc": "DoC"}


def _label_free_lines(m: dict[str, Any]) -> list[str]:
    """The label-free estimate section of ``report.md`` (nothing without ``--source-val``)."""
    lf = m.get("label_free")
    if lf is None:
        return []
    lines = ["## Estimated accuracy without labels", ""]
    if "missing" in lf:
        return lines + [f"No estimate: {lf['missing']}.", ""]
    lines += [
        f"Calibrated on the labeled source validation data `{lf['source_val']}` ({lf['n_source_val']} rows, "
        f"model accuracy there {lf['source_val_accuracy']:.3f}); computed from the model's confidences on these "
        f"{lf['n_target']} rows{'' if 'true_accuracy' in lf else ', which have no labels: estimates, not measured accuracies'}.",
        "",
        "| estimator | estimated accuracy |" + (" abs. error |" if "true_accuracy" in lf else ""),
        "|---|---|" + ("---|" if "true_accuracy" in lf else ""),
    ]
    for meth, est in lf["estimates"].items():
        name = _NAMES.get(meth, meth) + (" (default)" if meth == lf["method"] else "")
        err = f" {lf['abs_error'][meth]:.3f} |" if "true_accuracy" in lf else ""
        lines.append(f"| {name} | {est:.3f} |{err}")
    if "true_accuracy" in lf:
        lines += ["", f"True accuracy on these rows: {lf['true_accuracy']:.3f}."]
    return lines + [""]


def report_markdown(m: dict[str, Any]) -> str:
    """``report.md`` of an evaluation (labeled or not) from its metrics."""
    lines = [f"# Evaluation of `{m['model']}` on `{m['data']}`", ""]
    lines.append(
        f"{m['n']} rows; model labels: {', '.join(m['labels'])}; encoder `{m['encoder']}`, head `{m['head']}`."
    )
    lines.append("")
    if not m["labeled"]:
        lines += [
            f"**No labels** ({m['label_note']}): predictions only. Nothing below is an accuracy; it is "
            "what the model predicts on these texts.",
            "",
            "| predicted label | rows | share |",
            "|---|---|---|",
        ]
        lines += [f"| {lab} | {p['count']} | {p['fraction']:.3f} |" for lab, p in m["predicted"].items()]
        q = m["confidence_quartiles"]
        lines += ["", f"Mean confidence (top-class probability): {m['mean_confidence']:.3f} "
                  f"(quartiles {q[0]:.3f} / {q[1]:.3f} / {q[2]:.3f}).", ""]
        return "\n".join(lines + _label_free_lines(m))
    lines += [
        "| measure | value | 95% bootstrap CI |",
        "|---|---|---|",
        f"| accuracy | {m['accuracy']:.3f} | {_ci(m, 'accuracy')} |",
        f"| macro-F1 | {m['macro_f1']:.3f} | {_ci(m, 'macro_f1')} |",
        f"| majority-class baseline (always `{m['majority_class']}`) | {m['majority_baseline']:.3f} | – |",
        f"| ECE ({m['ece_bins']} bins) | {m['ece']:.3f} | – |",
        f"| mean confidence | {m['mean_confidence']:.3f} | – |",
        "",
        f"Intervals: percentile bootstrap over rows, {m['n_boot']} resamples.",
        "",
        *_label_free_lines(m),
        "## Per class",
        "",
        "| class | precision | recall | F1 | support | predicted |",
        "|---|---|---|---|---|---|",
    ]
    for lab, pc in m["per_class"].items():
        lines.append(
            f"| {lab} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['support']} | "
            f"{m['predicted'][lab]['count']} |"
        )
    lines += ["", "## Confusion matrix", "", "Rows: true class, columns: predicted class (counts).", ""]
    lines.append("| | " + " | ".join(m["labels"]) + " |")
    lines.append("|---|" + "---|" * len(m["labels"]))
    for lab, row in zip(m["labels"], m["confusion_matrix"], strict=True):
        lines.append(f"| {lab} | " + " | ".join(str(c) for c in row) + " |")
    lines += ["", "![confusion matrix](confusion_matrix.png)", "", "## Calibration", ""]
    lines += ["| confidence bin | rows | mean confidence | accuracy |", "|---|---|---|---|"]
    rel = m["reliability"]
    for i, c in enumerate(rel["count"]):
        if c:
            lo, hi = rel["edges"][i], rel["edges"][i + 1]
            lines.append(f"| ({lo:.2f}, {hi:.2f}] | {c} | {rel['confidence'][i]:.3f} | {rel['accuracy'][i]:.3f} |")
    lines += ["", "![reliability diagram](reliability.png)", ""]
    return "\n".join(lines)


def _estimate_line(m: dict[str, Any]) -> list[str]:
    lf = m.get("label_free")
    if lf is None:
        return []
    if "missing" in lf:
        return [f"estimated acc  none: {lf['missing']}"]
    others = ", ".join(f"{_NAMES.get(k, k)} {v:.4f}" for k, v in lf["estimates"].items() if k != lf["method"])
    err = f", error {lf['abs_error'][lf['method']]:.4f}" if "true_accuracy" in lf else " (no labels: an estimate)"
    return [f"estimated acc  {lf['estimate']:.4f}  {_NAMES.get(lf['method'], lf['method'])}{err}; {others}"]


def summary_lines(m: dict[str, Any]) -> list[str]:
    """A few lines for the terminal: the headline numbers (labeled) or the prediction shares."""
    if not m["labeled"]:
        shares = ", ".join(f"{lab} {p['count']} ({p['fraction']:.1%})" for lab, p in m["predicted"].items())
        return [
            f"no labels ({m['label_note']}): predictions only, not an accuracy",
            f"{m['n']} rows predicted: {shares}; mean confidence {m['mean_confidence']:.3f}",
            *_estimate_line(m),
        ]
    lines = [
        f"rows           {m['n']}",
        f"accuracy       {m['accuracy']:.4f}  95% CI {_ci(m, 'accuracy')}",
        f"macro-F1       {m['macro_f1']:.4f}  95% CI {_ci(m, 'macro_f1')}",
        f"majority class {m['majority_baseline']:.4f}  (always {m['majority_class']!r})",
        f"ECE            {m['ece']:.4f}  ({m['ece_bins']} bins)",
        "per class      " + "; ".join(
            f"{lab}: P {pc['precision']:.3f} R {pc['recall']:.3f} (n={pc['support']})" for lab, pc in m["per_class"].items()
        ),
        *_estimate_line(m),
    ]
    return lines


# -- entry point -----------------------------------------------------------------------------


def evaluate(
    model: Classifier | str | os.PathLike[str],
    data: str | os.PathLike[str] | LabeledTexts | tuple[Sequence[str], Sequence[Any] | None],
    *,
    text_column: str = "text",
    label_column: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    chunk_size: int = 10_000,
    n_boot: int = 1000,
    ece_bins: int = 15,
    seed: int = 0,
    trust_remote_code: bool = False,
    source_val: str | os.PathLike[str] | LabeledTexts | tuple[Sequence[str], Sequence[Any]] | None = None,
) -> EvaluationResult:
    """Scores a model on labeled data (or describes its predictions on unlabeled data).

    Args:
        model: a :class:`~textransfer.classifier.Classifier` or a saved model directory.
        data: a file (``.csv .tsv .jsonl .parquet .txt``, read in chunks), a
            :class:`~textransfer.data.LabeledTexts`, or a ``(texts, labels)`` pair
            (``labels=None``: unlabeled).
        text_column: the file's text column.
        label_column: the file's label column; None uses ``label`` when the file has one and
            reads the file as unlabeled otherwise. A named column must exist.
        output_dir: where to write ``metrics.json``, ``report.md`` and the figures (None: write
            nothing). A non-empty folder not written by ``evaluate`` is refused.
        batch_size: encoder batch size.
        chunk_size: rows read and predicted at a time.
        n_boot: bootstrap resamples of the 95% intervals (0: none).
        ece_bins: confidence bins of the ECE and the reliability diagram.
        seed: seeds the bootstrap.
        trust_remote_code: allow Python code shipped in a model folder to run (a model you trust).
        source_val: labeled source-domain data the model was not trained on (file, LabeledTexts
            or ``(texts, labels)``; a file is read with ``text_column`` and ``label_column`` or
            ``label``): adds ``metrics["label_free"]``, the accuracy estimated without the
            data's labels (ATC-NE, ATC-MC, DoC), beside the true accuracy when there are labels.

    Returns:
        An :class:`EvaluationResult`; ``metrics["accuracy"]`` etc. when the data has labels.

    Example:
        >>> res = textransfer.evaluate("runs/movies_frozen/tfidf/model", "reviews.csv")  # doctest: +SKIP
        >>> res.metrics["accuracy"], res.metrics["accuracy_ci95"]  # doctest: +SKIP
    """
    from textransfer.encoders.cache import check_chunk_size
    from textransfer.training.sharding import is_main_process

    check_chunk_size(chunk_size)
    if n_boot < 0 or ece_bins < 1:
        raise ValueError(f"n_boot must be >= 0 and ece_bins >= 1, got {n_boot} and {ece_bins}")
    model_name = "(in memory)"
    if not isinstance(model, Classifier):
        from textransfer.classifier import load

        model_name = str(model)
        model = load(model, trust_remote_code=trust_remote_code)
    name, source = _as_source(data)
    if isinstance(source, Path):
        chunks = _file_chunks(source, text_column, label_column, chunk_size)
    else:
        chunks = _memory_chunks(source, chunk_size)
    y, proba = _collect(model, chunks, name, batch_size)
    labels = model.labels
    base = {
        "written_by": MARKER,
        "format": FORMAT,
        "model": model_name,
        "data": name,
        "encoder": model.encoder.name,
        "head": model.head.name,
        "labeled": y is not None,
    }
    if y is not None:
        metrics = {**base, **_labeled_metrics(y, proba, labels, n_boot, ece_bins, seed)}
    else:
        where = "the data has no labels" if not isinstance(source, Path) else (
            f"no column {label_column or 'label'!r} in the file" if source.suffix.lower() != ".txt" else ".txt: texts only"
        )
        metrics = {**base, **_unlabeled_metrics(proba, labels), "label_note": where}
    if source_val is not None:
        from textransfer.estimation import label_free_metrics

        metrics["label_free"] = label_free_metrics(
            model, source_val, proba, y, text_column=text_column, label_column=label_column,
            batch_size=batch_size, chunk_size=chunk_size,
        )
    result = EvaluationResult(metrics)
    if output_dir is not None and is_main_process():
        out = Path(output_dir)
        result.files = _write_outputs(out, metrics, source if isinstance(source, Path) else None)
        result.output_dir = out
    return result
