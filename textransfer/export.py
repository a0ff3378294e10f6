"""ONNX export: a saved model (transformer or sentence encoder + head) as ONE graph, tokens ->
class probabilities, run by onnxruntime with no torch or transformers installed.

An export folder::

    model.onnx              inputs input_ids, attention_mask (, token_type_ids), int64 (batch, seq);
                            output probabilities, float32 (batch, classes)
    tokenizer.json, ...     the encoder's tokenizer (``save_pretrained``), read by ``tokenizers``
    textransfer-onnx.json   labels, tokenisation and pooling settings (max_length, pooling,
                            normalisation), precision, the parity check, and the source model's
                            description (encoder, head, strategy, metrics, versions)

``textransfer.load(folder)`` recognises an export and returns an :class:`OnnxClassifier` with the
same ``predict`` / ``predict_proba`` / ``labels`` as a :class:`~textransfer.Classifier`.

The graph is traced with ``torch.onnx.export(dynamo=True)`` (torch.export; the TorchScript
exporter is deprecated), batch and sequence length dynamic. ``int8=True`` quantises the fp32
graph with onnxruntime's dynamic quantisation (int8 weights of the MatMuls, one scale per output
channel; activations quantised per batch at run time). Every export is checked before it is written: the folder's
probabilities on sample texts (through ``tokenizers`` + onnxruntime) against the torch fp32
model on the same texts (through the encoder's own tokenisation); an fp32 export that differs by
more than ``tolerance`` is refused, an int8 export records its difference.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textransfer._modelfolder import (
    apply_modes,
    file_digests,
    new_tmp_dir,
    remove_stale,
    side_folder,
)
from textransfer.encoders.onnx_graph import CHECK_TEXTS, graph_modules, quantize_int8, torch_export
from textransfer.onnx_classifier import (
    EXPORT_META,
    FORMAT,
    FORMAT_VERSION,
    MODEL_FILE,
    ExportFormatError,
    OnnxClassifier,
    is_onnx_export,
)

__all__ = [
    "EXPORT_META",
    "ExportError",
    "ExportFormatError",
    "OnnxClassifier",
    "export_onnx",
    "is_onnx_export",
]

EXPORTABLE_ENCODERS = ("transformer", "sentence")
EXPORTABLE_HEADS = ("logreg", "linear", "mlp", "cosine")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class ExportError(ValueError):
    """The model cannot be exported (unsupported encoder or head) or its export failed the check."""


def _encoder_part(encoder: Any, modules: dict[str, type]) -> tuple[Any, Any, dict[str, Any]]:
    """(features module, HF tokenizer, tokenisation/pooling settings) of an exportable encoder."""
    import copy

    name = encoder.name
    if name not in EXPORTABLE_ENCODERS:
        raise ExportError(
            f"the {name!r} encoder cannot be exported to ONNX: textransfer exports the "
            f"{' and '.join(EXPORTABLE_ENCODERS)} encoders (tokens -> pooled features) with a "
            f"{', '.join(EXPORTABLE_HEADS)} head. Serve this model as it is (`textransfer serve`) instead"
        )
    if name == "transformer":
        tokenizer = encoder.tokenizer
        features = modules["TransformerFeatures"](copy.deepcopy(encoder.module).eval(), encoder.pooling, encoder.normalize)
        settings = {
            "max_length": encoder.max_length,
            "pooling": encoder.pooling,
            "normalize": encoder.normalize,
            "lowercase": False,
            "strip": False,
        }
    else:  # sentence-transformers: its own pooling / Dense / Normalize modules travel in the graph
        st = encoder.module
        tokenizer = st.tokenizer
        first = st[0]
        settings = {
            "max_length": st.max_seq_length or None,
            "pooling": _sentence_pooling(st),
            "modules": [type(m).__name__ for m in st],
            "normalize": encoder.normalize,
            "lowercase": bool(getattr(first, "do_lower_case", False)),
            "strip": True,  # sentence-transformers strips each text before tokenising
        }
        features = modules["SentenceFeatures"](copy.deepcopy(st).eval(), encoder.normalize)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    settings.update(
        pad_token_id=int(pad_id),
        pad_token=tokenizer.pad_token,
        padding_side=getattr(tokenizer, "padding_side", "right"),
        truncation_side=getattr(tokenizer, "truncation_side", "right"),
    )
    return features.eval(), tokenizer, settings


def _sentence_pooling(st: Any) -> str | None:
    """The pooling mode of a SentenceTransformer's Pooling module (for the description only)."""
    for module in st:
        mode = getattr(module, "pooling_mode", None)  # sentence-transformers >= 5
        if mode is None and hasattr(module, "get_pooling_mode_str"):
            mode = module.get_pooling_mode_str()
        if mode:
            return mode if isinstance(mode, str) else "+".join(map(str, mode))
    return None


def _head_part(head: Any, modules: dict[str, type]) -> Any:
    import copy

    name = head.name
    if name in ("linear", "mlp"):
        if head.module is None:
            raise ExportError(f"the {name} head is not trained: nothing to export")
        return modules["TorchHeadProba"](copy.deepcopy(head.module).float().eval())
    if name == "logreg":
        if head.coef is None:
            raise ExportError("the logreg head is not fitted: nothing to export")
        return modules["LinearProba"](head.coef, head.intercept)
    if name == "cosine":
        if head.prototypes is None:
            raise ExportError("the cosine head has no prototypes: nothing to export")
        return modules["CosineProba"](head.prototypes, head.temperature)
    raise ExportError(
        f"the {name!r} head cannot be exported to ONNX: textransfer exports {', '.join(EXPORTABLE_HEADS)} heads"
    )


def _model_inputs(encoder: Any, texts: Sequence[str]) -> dict[str, Any]:
    """The encoder's own tokenisation of ``texts``: the tensors the graph takes, in ONNX order."""
    batch = encoder.collate(list(texts))
    missing = [k for k in _INPUTS[:2] if k not in batch]
    if missing:
        raise ExportError(f"the {encoder.name} encoder's tokenizer gives no {missing}: cannot build the ONNX inputs")
    return {k: batch[k].long() for k in _INPUTS if k in batch}


# -- export ----------------------------------------------------------------------------------


def export_onnx(
    model: Any,
    output: str | Path,
    *,
    int8: bool = False,
    opset: int | None = None,
    check_texts: Sequence[str] | None = None,
    tolerance: float = 1e-4,
) -> Path:
    """Exports a model to an ONNX folder (see the module docstring) and returns its path.

    Args:
        model: a model directory or a loaded :class:`~textransfer.Classifier`.
        output: the export folder; written atomically. An existing export there is replaced;
            any other existing, non-empty folder is refused (it is never deleted).
        int8: quantise the graph's weights to int8 (onnxruntime dynamic quantisation).
        opset: ONNX opset (default: the exporter's).
        check_texts: texts for the parity check (default :data:`CHECK_TEXTS`).
        tolerance: fp32 exports whose probabilities differ from torch's by more are refused.

    Raises:
        ExportError: unsupported encoder or head, or the parity check failed.
        ValueError: ``output`` is the model folder, or an existing folder that is not an export.
    """
    from textransfer._optional import require
    from textransfer.classifier import Classifier

    model_dir = None
    if not isinstance(model, Classifier):
        model_dir = Path(model)
        model = Classifier.load(model_dir)
    out = Path(output)
    _check_output(out, model_dir)
    modules = graph_modules()
    features, tokenizer, settings = _encoder_part(model.encoder, modules)
    head = _head_part(model.head, modules)
    require("onnxruntime", extra="onnx", feature="ONNX export")
    require("onnxscript", extra="onnx", feature="ONNX export (torch.onnx dynamo exporter)")
    texts = list(check_texts or CHECK_TEXTS)
    inputs = _model_inputs(model.encoder, texts)
    graph = modules["ProbabilityGraph"](features, head).eval()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_tmp_dir(out.parent, out.name)
    try:
        fp32_path = tmp / ("model.fp32.onnx" if int8 else MODEL_FILE)
        torch_export(graph, inputs, fp32_path, opset)
        if int8:
            quantize_int8(fp32_path, tmp / MODEL_FILE)
            fp32_path.unlink()
        tokenizer.save_pretrained(str(tmp))
        if not (tmp / "tokenizer.json").is_file():
            raise ExportError(
                f"the {model.encoder.name} encoder's tokenizer has no fast version (tokenizer.json); "
                "ONNX export needs one (use a model with a fast tokenizer)"
            )
        meta = _export_meta(model, model_dir, settings, list(inputs), int8, opset)
        meta["files"] = file_digests(tmp)  # checked by OnnxClassifier.load, as model folders are
        (tmp / EXPORT_META).write_text(json.dumps(meta, indent=2, default=str))
        meta["check"] = _parity_check(graph, inputs, tmp, texts, int8, tolerance)
        # Rewritten with the check's result; the folder only gets its name once complete.
        (tmp / EXPORT_META).write_text(json.dumps(meta, indent=2, default=str))
        apply_modes(tmp)
        _replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    remove_stale(out.parent, out.name)
    return out


def _check_output(out: Path, model_dir: Path | None) -> None:
    if model_dir is not None and out.resolve() == model_dir.resolve():
        raise ValueError(f"--output {out} is the model folder itself: choose a new folder for the export")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out} is a file: choose a folder for the export")
    if out.is_dir() and any(out.iterdir()) and not is_onnx_export(out):
        raise ValueError(
            f"--output {out} exists and is not a textransfer ONNX export: choose a new or empty folder "
            "(textransfer never deletes a folder it did not write)"
        )


def _export_meta(
    model: Any, model_dir: Path | None, settings: dict[str, Any], inputs: list[str], int8: bool, opset: int | None
) -> dict[str, Any]:
    from textransfer.classifier import META_FILE, _versions

    source: dict[str, Any] = {}
    if model_dir is not None and (model_dir / META_FILE).is_file():
        source = json.loads((model_dir / META_FILE).read_text())
    versions = _versions()
    for pkg in ("onnx", "onnxruntime", "onnxscript", "tokenizers"):
        try:
            from importlib.metadata import version

            versions[pkg] = version(pkg)
        except Exception:
            pass
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "labels": model.label_map.to_json(),
        "precision": "int8" if int8 else "fp32",
        "inputs": inputs,
        "output": "probabilities",
        "opset": opset,
        "settings": settings,
        "encoder": {"name": model.encoder.name, "kwargs": model.encoder.config()},
        "head": {"name": model.head.name, "kwargs": model.head.config()},
        "strategy": model.strategy,
        "metrics": model.metrics,
        "versions": versions,
        "source_versions": source.get("versions", {}),
    }


def _parity_check(
    graph: Any, inputs: dict[str, Any], folder: Path, texts: list[str], int8: bool, tolerance: float
) -> dict[str, Any]:
    """The export's probabilities on ``texts`` (its tokenizer + onnxruntime) against the torch
    graph in fp32 (the encoder's own tokenisation)."""
    import torch

    with torch.inference_mode():
        reference = graph(**inputs).float().numpy()
    got = OnnxClassifier.load(folder).predict_proba(texts)
    diff = float(np.abs(got - reference).max())
    agree = float(np.mean(got.argmax(axis=1) == reference.argmax(axis=1)))
    if not int8 and not diff <= tolerance:
        raise ExportError(
            f"the ONNX export differs from the torch model by {diff:.2e} in probability (tolerance "
            f"{tolerance:g}) on {len(texts)} check texts: the export is not written; report this "
            "with the model's encoder settings"
        )
    return {"texts": len(texts), "max_abs_diff": diff, "argmax_agreement": agree, "tolerance": None if int8 else tolerance}


def _replace(tmp: Path, out: Path) -> None:
    """Moves the finished export into place; a previous export there is replaced."""
    old = None
    if out.exists():
        if any(out.iterdir()):
            old = side_folder(out.parent, out.name, "old")
            os.replace(out, old)
        else:
            out.rmdir()
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
