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
target accuracy is also *estimated* without labels (COT, COTT, DoC, ATC-NE, ATC-MC, AC; see
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
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textransfer.classifier import Classifier
from textransfer.data.labeled import LabeledTexts
from textransfer.model_outputs import check_label_map, model_probabilities

if TYPE_CHECKING:
    from textransfer.onnx_classifier import OnnxClassifier

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


# -- metrics ---------------------------------------------------------------------------------


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


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
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


_NAMES = {"atc-ne": "ATC-NE", "atc-mc": "ATC-MC", "doc": "DoC", "ac": "AC", "average": "average of ATC-NE, DoC, AC",
          "cot": "COT", "cott": "COTT"}


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
        f"{m['n']} rows; model labels: {', '.join(m['labels'])}; encoder `{m['encoder']}`"
        + (f" at {m['encoder_precision']}" if m.get("encoder_precision") else "") + f", head `{m['head']}`."
        + (" The data's labels were renamed: " + ", ".join(f"`{k}` → `{v}`" for k, v in m["label_map"].items()) + "."
           if m.get("label_map") else "")
    )
    lines.append("")
    cut = _truncated_sentence(m)
    if cut is not None:
        lines += [f"**Truncated:** {cut}.", ""]
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
    lines = [f"estimated acc  {lf['estimate']:.4f}  {_NAMES.get(lf['method'], lf['method'])}{err}; {others}"]
    if str(lf.get("source_val", "")).startswith("saved with the model"):
        lines.append(f"               calibrated on the {lf['n_source_val']} source validation rows saved with the model")
    return lines


def summary_lines(m: dict[str, Any]) -> list[str]:
    """A few lines for the terminal: the headline numbers (labeled) or the prediction shares."""
    if not m["labeled"]:
        shares = ", ".join(f"{lab} {p['count']} ({p['fraction']:.1%})" for lab, p in m["predicted"].items())
        return [
            f"no labels ({m['label_note']}): predictions only, not an accuracy",
            f"{m['n']} rows predicted: {shares}; mean confidence {m['mean_confidence']:.3f}",
            *_truncated_lines(m),
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
        *_truncated_lines(m),
        *_estimate_line(m),
    ]
    return lines


def _truncated_sentence(m: dict[str, Any]) -> str | None:
    """How many texts were longer than the encoder's token limit; None when none were."""
    t = m.get("truncated")
    if not t or not t["texts"]:
        return None
    return (f"{t['texts']} of {m['n']} texts ({t['texts'] / max(m['n'], 1):.1%}) are longer than the "
            f"encoder's {t['limit']} tokens: the model read their first {t['limit']} only")


def _truncated_lines(m: dict[str, Any]) -> list[str]:
    """The summary's line for :func:`_truncated_sentence` (none when no text was cut)."""
    cut = _truncated_sentence(m)
    return [] if cut is None else [f"truncated      {cut}"]


# -- entry point -----------------------------------------------------------------------------


def _describe(model: Any) -> dict[str, Any]:
    """The model's encoder and head names and the precision its encoder ran at; an ONNX export
    (:class:`~textransfer.onnx_classifier.OnnxClassifier`) describes itself in its metadata."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:  # an ONNX export: the graph runs in onnxruntime at the exported precision
        meta = model.meta
        return {"encoder": meta["encoder"]["name"], "head": meta["head"]["name"],
                "encoder_precision": model.precision, "runtime": "onnxruntime"}
    described = {"encoder": encoder.name, "head": model.head.name}
    if getattr(encoder, "precision", None) is not None:
        described["encoder_precision"] = encoder.precision
    return described


def evaluate(
    model: Classifier | OnnxClassifier | str | os.PathLike[str],
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
    source_val_text_column: str | None = None,
    source_val_label_column: str | None = None,
    label_map: dict[Any, Any] | None = None,
    delimiter: str | None = None,
    precision: str | None = None,
) -> EvaluationResult:
    """Scores a model on labeled data (or describes its predictions on unlabeled data).

    Args:
        model: a :class:`~textransfer.classifier.Classifier`, an ONNX export loaded by
            :func:`textransfer.load`, or a folder of either.
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
            or ``(texts, labels)``): adds ``metrics["label_free"]``, the accuracy estimated without the
            data's labels (COT, COTT, DoC, ATC-NE, ATC-MC, AC), beside the true accuracy when there are labels.
            None: the source validation outputs saved with the model, when it has them (models of
            ``textransfer run`` with a validation split and of ``textransfer crossdomain``).
        source_val_text_column: the ``source_val`` file's text column, when it is named
            otherwise than ``data``'s (default: ``text_column``).
        source_val_label_column: the ``source_val`` file's label column (default:
            ``label_column``, else ``label``); an unlabeled ``data`` has no label column to share.
        label_map: renames the data's labels (and ``source_val``'s) to the model's, matched
            by their string form, e.g. ``{0: "negative", 1: "positive"}`` for a file labeled 0/1;
            labels it does not name are kept.
        delimiter: the field separator of a ``.csv``/``.tsv`` file (``data`` and a
            ``source_val`` file) that uses another one, e.g. ``";"``.
        precision: with a model directory, run its encoder at this precision instead of the
            saved one (see :func:`textransfer.load`); ``metrics["encoder_precision"]`` records the one used.

    Returns:
        An :class:`EvaluationResult`; ``metrics["accuracy"]`` etc. when the data has labels.

    Example:
        >>> res = textransfer.evaluate("runs/movies_frozen/tfidf/model", "reviews.csv")  # doctest: +SKIP
        >>> res.metrics["accuracy"], res.metrics["accuracy_ci95"]  # doctest: +SKIP
    """
    from textransfer.distributed import is_main_process
    from textransfer.encoders.cache import check_chunk_size

    check_chunk_size(chunk_size)
    if n_boot < 0 or ece_bins < 1:
        raise ValueError(f"n_boot must be >= 0 and ece_bins >= 1, got {n_boot} and {ece_bins}")
    model_name = "(in memory)"
    if isinstance(model, (str, os.PathLike)):
        from textransfer.classifier import load

        model_name = str(model)
        model = load(os.fspath(model), trust_remote_code=trust_remote_code, precision=precision)
    elif precision is not None:
        raise ValueError("precision applies when evaluate loads a model directory; for a loaded Classifier, "
                         "load it with textransfer.load(..., precision=...)")
    source = Path(data) if isinstance(data, (str, os.PathLike)) else None  # a file, not in memory
    stats: dict[str, Any] = {}
    name, y, proba = model_probabilities(
        model, data, text_column=text_column, label_column=label_column, batch_size=batch_size,
        chunk_size=chunk_size, label_map=label_map, delimiter=delimiter, stats=stats,
    )
    labels = model.labels
    base = {
        "written_by": MARKER,
        "format": FORMAT,
        "model": model_name,
        "data": name,
        **_describe(model),
        "labeled": y is not None,
        **({"label_map": check_label_map(label_map, model.labels)} if label_map else {}),
        **stats,  # "truncated": texts longer than the encoder's token limit
    }
    if y is not None:
        metrics = {**base, **_labeled_metrics(y, proba, labels, n_boot, ece_bins, seed)}
    else:
        where = "the data has no labels" if source is None else (
            f"no column {label_column or 'label'!r} in the file" if source.suffix.lower() != ".txt" else ".txt: texts only"
        )
        metrics = {**base, **_unlabeled_metrics(proba, labels), "label_note": where}
    if source_val is not None or getattr(model, "calibration", None) is not None:
        # Without source_val: the source validation outputs saved with the model.
        from textransfer.estimation import label_free_metrics

        metrics["label_free"] = label_free_metrics(
            model, source_val, proba, y, text_column=source_val_text_column or text_column,
            label_column=source_val_label_column or label_column, batch_size=batch_size, chunk_size=chunk_size,
            label_map=label_map, delimiter=delimiter,
        )
    result = EvaluationResult(metrics)
    if output_dir is not None and is_main_process():
        out = Path(output_dir)
        result.files = _write_outputs(out, metrics, source)
        result.output_dir = out
    return result
