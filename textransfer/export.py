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
    check_received_tree,
    file_digests,
    new_tmp_dir,
    remove_stale,
    side_folder,
    verify_digests,
)

EXPORT_META = "textransfer-onnx.json"
MODEL_FILE = "model.onnx"
FORMAT = "textransfer-onnx"
FORMAT_VERSION = 1
EXPORTABLE_ENCODERS = ("transformer", "sentence")
EXPORTABLE_HEADS = ("logreg", "linear", "mlp", "cosine")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Parity-check texts: short and long, padding, casing, spaces around (the sentence encoder strips).
CHECK_TEXTS = (
    "a great phone",
    "  The battery died after two days, and the screen is dull.  ",
    "An awful film: the plot goes nowhere, the actors look bored and it lasts three hours.",
    "ok",
    "I LOVED IT!!! Best purchase of the year, would buy it again without thinking twice.",
    "",
)


class ExportError(ValueError):
    """The model cannot be exported (unsupported encoder or head) or its export failed the check."""


class ExportFormatError(ValueError):
    """An export folder is incomplete, corrupt, or written by a newer textransfer."""


def is_onnx_export(directory: str | Path) -> bool:
    """True when ``directory`` holds an ONNX export (``model.onnx`` and its JSON)."""
    d = Path(directory)
    return (d / MODEL_FILE).is_file() and (d / EXPORT_META).is_file()


# -- torch graph: encoder features + head -> probabilities ------------------------------------


def _graph_modules() -> dict[str, type]:
    """The torch modules of the export graph (defined lazily: torch is imported only here)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from textransfer.encoders.transformer import pool_hidden

    class TransformerFeatures(nn.Module):
        """A Hugging Face backbone + mean/CLS pooling (+ L2 normalisation): tokens -> features."""

        def __init__(self, backbone: nn.Module, pooling: str, normalize: bool) -> None:
            super().__init__()
            self.backbone, self.pooling, self.normalize = backbone, pooling, normalize

        def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            hidden = self.backbone(**inputs).last_hidden_state
            pooled = pool_hidden(hidden, inputs["attention_mask"], self.pooling)
            return F.normalize(pooled, dim=-1) if self.normalize else pooled

    class SentenceFeatures(nn.Module):
        """A SentenceTransformer's own modules (transformer, pooling, Dense, Normalize)."""

        def __init__(self, model: nn.Module, normalize: bool) -> None:
            super().__init__()
            self.model, self.normalize = model, normalize

        def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            emb = self.model(dict(inputs))["sentence_embedding"]
            return F.normalize(emb, dim=-1) if self.normalize else emb

    class TorchHeadProba(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.module(features)["logits"].float(), dim=-1)

    class LinearProba(nn.Module):
        """Logistic regression from its stored coefficients: softmax, or a sigmoid for 2 classes."""

        def __init__(self, coef: np.ndarray, intercept: np.ndarray) -> None:
            super().__init__()
            self.linear = nn.Linear(coef.shape[1], coef.shape[0])
            with torch.no_grad():
                self.linear.weight.copy_(torch.from_numpy(np.asarray(coef, dtype=np.float32)))
                self.linear.bias.copy_(torch.from_numpy(np.asarray(intercept, dtype=np.float32)))
            self.binary = coef.shape[0] == 1

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            scores = self.linear(features)
            if self.binary:
                p1 = torch.sigmoid(scores)
                return torch.cat([1.0 - p1, p1], dim=-1)
            return torch.softmax(scores, dim=-1)

    class CosineProba(nn.Module):
        def __init__(self, prototypes: np.ndarray, temperature: float) -> None:
            super().__init__()
            self.register_buffer("prototypes", torch.from_numpy(np.asarray(prototypes, dtype=np.float32)))
            self.temperature = float(temperature)

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            unit = F.normalize(features, dim=-1, eps=1e-12)
            return torch.softmax(unit @ self.prototypes.T / self.temperature, dim=-1)

    class ProbabilityGraph(nn.Module):
        """Token tensors -> probabilities (the ONNX inputs are the tensors given to the export)."""

        def __init__(self, features: nn.Module, head: nn.Module) -> None:
            super().__init__()
            self.features, self.head = features, head

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
        ) -> torch.Tensor:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            return self.head(self.features(inputs))

    return {
        "TransformerFeatures": TransformerFeatures,
        "SentenceFeatures": SentenceFeatures,
        "TorchHeadProba": TorchHeadProba,
        "LinearProba": LinearProba,
        "CosineProba": CosineProba,
        "ProbabilityGraph": ProbabilityGraph,
    }


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
    modules = _graph_modules()
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
        _torch_export(graph, inputs, fp32_path, opset)
        if int8:
            _quantize(fp32_path, tmp / MODEL_FILE)
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


def _torch_export(graph: Any, inputs: dict[str, Any], path: Path, opset: int | None) -> None:
    import contextlib
    import io
    import logging
    import warnings

    import torch

    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = {name: {0: batch, 1: seq} for name in inputs}
    # The exporter prints progress and logs/warns about its own internals (e.g. torchvision ops
    # it skips): keep the user's output clean.
    torch_log = logging.getLogger("torch.onnx")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                (),
                str(path),
                kwargs=dict(inputs),
                input_names=list(inputs),
                output_names=["probabilities"],
                dynamic_shapes=dynamic,
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        torch_log.setLevel(level)


def _quantize(fp32_path: Path, int8_path: Path) -> None:
    """onnxruntime dynamic quantisation: int8 weights with one scale per output channel,
    activations quantised per batch. (MiniLM + logreg, 500 product sentences: per-tensor scales
    changed 5.4% of the labels against torch fp32, per-channel 3.6%; torch int8 2%.)

    First its recommended pre-processing (ONNX shape inference, graph optimisation); its symbolic
    shape inference does not complete on torch.export graphs and is skipped."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = fp32_path.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
    quantize_dynamic(str(pre), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    pre.unlink()


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


# -- runtime ---------------------------------------------------------------------------------


class OnnxClassifier:
    """An ONNX export, run by onnxruntime: ``predict``, ``predict_proba``, ``labels`` as a
    :class:`~textransfer.Classifier` has (needs onnxruntime, tokenizers and numpy only).

    Example:
        >>> clf = textransfer.load("exports/minilm-onnx")  # doctest: +SKIP
        >>> clf.predict(["great battery life"])  # doctest: +SKIP
        ['positive']
    """

    def __init__(self, session: Any, tokenizer: Any, meta: dict[str, Any], directory: Path) -> None:
        from textransfer.data.labeled import LabelMap

        self.session = session
        self.tokenizer = tokenizer
        self.meta = meta
        self.directory = directory
        self.label_map = LabelMap(meta["labels"])
        self.settings: dict[str, Any] = meta["settings"]
        self.precision: str = meta.get("precision", "fp32")
        self.strategy: dict[str, Any] = meta.get("strategy") or {}
        self.metrics: dict[str, Any] = meta.get("metrics") or {}
        self.input_names = [i.name for i in session.get_inputs()]

    @property
    def labels(self) -> list[Any]:
        """Class labels, in the column order of :meth:`predict_proba`."""
        return list(self.label_map.labels)

    @classmethod
    def load(cls, directory: str | Path, threads: int | None = None) -> OnnxClassifier:
        """Loads an export folder written by :func:`export_onnx`.

        Args:
            directory: the export folder.
            threads: onnxruntime intra-op threads (default: its own choice, the cores).
        """
        from textransfer._optional import require

        d = Path(directory)
        meta_path = d / EXPORT_META
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise ExportFormatError(f"{d} is not an ONNX export: {EXPORT_META} is missing") from None
        except json.JSONDecodeError as exc:
            raise ExportFormatError(f"{meta_path} is corrupt ({exc}); export the model again") from None
        if meta.get("format") != FORMAT or not isinstance(meta.get("format_version"), int):
            raise ExportFormatError(f"{meta_path} is not a textransfer ONNX description; export the model again")
        if meta["format_version"] > FORMAT_VERSION:
            raise ExportFormatError(
                f"{d} was exported by a newer textransfer (format {meta['format_version']}; this version reads "
                f"up to {FORMAT_VERSION}): upgrade with pip install -U textransfer"
            )
        for name in (MODEL_FILE, "tokenizer.json"):
            if not (d / name).is_file():
                raise ExportFormatError(f"{d} is incomplete: {name} is missing; export the model again")
        # A received folder is data from a stranger (DESIGN.md section 7): no links out of it, no
        # pickles, and the files are those the export wrote.
        check_received_tree(d)
        if isinstance(meta.get("files"), dict):
            verify_digests(d, meta["files"], meta_path, ())
        ort = require("onnxruntime", extra="onnx", feature="running an ONNX export")
        tokenizers = require("tokenizers", extra="transformers", feature="running an ONNX export")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        session = ort.InferenceSession(str(d / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        tokenizer = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
        settings = meta["settings"]
        tokenizer.no_padding()  # batches are padded here, after sorting by length
        if settings.get("max_length"):
            tokenizer.enable_truncation(int(settings["max_length"]), direction=settings.get("truncation_side", "right"))
        else:
            tokenizer.no_truncation()
        return cls(session, tokenizer, meta, d)

    def _prepare(self, text: str) -> str:
        if self.settings.get("strip"):
            text = text.strip()
        if self.settings.get("lowercase"):
            text = text.lower()
        return text

    def predict_proba(self, inputs: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, float32 ``(len(inputs), len(labels))``, columns in ``labels`` order."""
        from textransfer.encoders.base import check_batch_size, check_inputs

        batch_size = check_batch_size(batch_size)
        items = check_inputs(inputs)
        out = np.empty((len(items), len(self.label_map)), dtype=np.float32)
        if not items:
            return out
        encodings = self.tokenizer.encode_batch([self._prepare(t) for t in items])
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(-lengths, kind="stable")  # similar lengths together: little padding
        pad_id = int(self.settings.get("pad_token_id", 0))
        left = self.settings.get("padding_side") == "left"
        for start in range(0, len(items), batch_size):
            idx = order[start : start + batch_size]
            width = int(lengths[idx].max())
            feeds = {name: np.zeros((len(idx), width), dtype=np.int64) for name in self.input_names}
            if "input_ids" in feeds:
                feeds["input_ids"][:] = pad_id
            for row, i in enumerate(idx):
                enc = encodings[i]
                n = len(enc.ids)
                cols = slice(width - n, width) if left else slice(0, n)
                values = {"input_ids": enc.ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.type_ids}
                for name, arr in feeds.items():
                    arr[row, cols] = values[name]
            out[idx] = self.session.run(["probabilities"], feeds)[0]
        return out

    def predict(self, inputs: Sequence[str], batch_size: int = 32) -> list[Any]:
        """The most probable label of each input; an empty list gives an empty list."""
        proba = self.predict_proba(inputs, batch_size=batch_size)
        return self.label_map.decode(proba.argmax(axis=1)) if len(proba) else []
