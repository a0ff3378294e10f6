"""Running an ONNX export (written by :func:`textransfer.export.export_onnx`): tokens -> class
probabilities through onnxruntime, with no torch or transformers installed.

``textransfer.load(folder)`` recognises an export (:func:`is_onnx_export`) and returns an
:class:`OnnxClassifier` with the same ``predict`` / ``predict_proba`` / ``labels`` as a
:class:`~textransfer.Classifier`. A received export is checked like any received model folder: no
links out of it, no pickles, and its files are those the export wrote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textransfer._modelfolder import check_received_tree, verify_digests

EXPORT_META = "textransfer-onnx.json"
MODEL_FILE = "model.onnx"
FORMAT = "textransfer-onnx"
FORMAT_VERSION = 1


class ExportFormatError(ValueError):
    """An export folder is incomplete, corrupt, or written by a newer textransfer."""


def is_onnx_export(directory: str | Path) -> bool:
    """True when ``directory`` holds an ONNX export (``model.onnx`` and its JSON)."""
    d = Path(directory)
    return (d / MODEL_FILE).is_file() and (d / EXPORT_META).is_file()


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
