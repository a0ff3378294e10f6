"""Frozen-encoding fast paths shared by the transformer and sentence encoders.

* :func:`length_sorted_batches` tokenises once (fast tokenizers batch in Rust), sorts by *token*
  count and yields right-padded batches, so each batch pads only to its own longest text.
* :class:`OnnxInt8Features` runs an encoder's features graph as int8 in onnxruntime (the graph
  of ``textransfer export --int8``); :func:`to_bf16` makes a copy of a module with bf16 weights
  (with eager attention where :func:`textransfer.precision.bf16_eager_attention` says so).
* :class:`LowPrecisionCache` keeps such a copy and rebuilds it when the fp32 weights change in
  place (fine-tuning), detected through the tensors' version counters.

int8 no longer uses ``torch.ao.quantization`` (deprecated by torch with its quantised tensor
types). Non-deprecated candidates measured on MiniLM (Intel Xeon, AVX-512 BF16/VNNI, no AMX, 2
shared cores): torchao's int8 dynamic-activation tensors ran at 0.69x fp32 (per-call Python
overhead of its tensor subclass), int8 layers on ``torch._int_mm`` at 0.5-1.2x (the quantise and
rescale steps around the multiply cost as much as it saves), onnxruntime's dynamic int8 graph
at 2x and more (docs/benchmarks.md).

Nothing here is public API; torch is imported inside the functions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

# Name what quantize_int8 / to_bf16 do; part of the encoders' fingerprints, so a new scheme gets
# new feature-cache keys.
INT8_SCHEME = "int8:onnxruntime-dynamic:per-channel-int8-weights:per-batch-uint8-activations"
BF16_SCHEME = "bf16:weights"


def length_sorted_batches(
    tokenizer: Any, items: Sequence[str], batch_size: int, max_length: int | None
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Yields ``(indices, batch)`` with batches of texts of similar token length.

    Args:
        tokenizer: a Hugging Face tokenizer (``pad_token_id`` and ``padding_side`` are honoured).
        items: the texts.
        batch_size: texts per batch.
        max_length: truncate to this many tokens (special tokens included); None: no truncation.

    Yields:
        ``indices`` (int64 positions in ``items``, longest first) and ``batch``, a dict of int64
        tensors ``(len(indices), t)`` where ``t`` is the longest text of the batch.
    """
    enc = tokenizer(list(items), truncation=max_length is not None, max_length=max_length, padding=False)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    lengths = np.fromiter((len(x) for x in enc["input_ids"]), dtype=np.int64, count=len(items))
    # Longest first: a memory problem shows on the first batch, not after minutes of work.
    order = np.argsort(-lengths, kind="stable")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    left = getattr(tokenizer, "padding_side", "right") == "left"
    for start in range(0, len(items), batch_size):
        idx = order[start : start + batch_size]
        columns = {key: [enc[key][i] for i in idx] for key in keys}
        yield idx, pad_token_rows(columns, pad_id, left=left)


def count_over_limit(tokenizer: Any, items: Sequence[str], limit: int | None) -> int:
    """How many of ``items`` have more tokens (special tokens included) than ``limit``: the
    texts an encoder truncated to it. 0 without a limit."""
    if not limit or not len(items):
        return 0
    enc = tokenizer(list(items), truncation=False, padding=False, verbose=False,
                    return_attention_mask=False, return_token_type_ids=False)
    return sum(len(ids) > limit for ids in enc["input_ids"])


def pad_token_rows(columns: dict[str, list[list[int]]], pad_id: int, left: bool = False) -> dict[str, Any]:
    """Pads unpadded token columns (``{"input_ids": [[...], ...], ...}``) into int64 tensors.

    ``input_ids`` are filled with ``pad_id``, every other column with 0, on the right (or the left
    with ``left``) up to the longest row; an ``attention_mask`` is added when missing.
    """
    import torch

    ids = columns["input_ids"]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    width = int(lengths.max()) if len(ids) else 0
    batch = {}
    for key, column in columns.items():
        arr = np.full((len(column), width), pad_id if key == "input_ids" else 0, dtype=np.int64)
        for row, seq in enumerate(column):
            if left:
                arr[row, width - len(seq) :] = seq
            else:
                arr[row, : len(seq)] = seq
        batch[key] = torch.from_numpy(arr)
    if "attention_mask" not in batch:
        pos = np.arange(width)[None, :]
        n = lengths[:, None]
        batch["attention_mask"] = torch.from_numpy(((pos >= width - n) if left else (pos < n)).astype(np.int64))
    return batch


def to_bf16(module: Any) -> Any:
    """A copy of ``module`` with bf16 weights, in eval mode (inference only).

    bf16 weights, not autocast over the fp32 ones: autocast casts every weight again in every
    call; on an AVX-512 BF16 CPU without AMX the copy ran at 0.52x fp32 against 0.38x for
    autocast (MiniLM, 480 product sentences), and it spares the casts on AMX too.
    """
    import torch

    from textransfer.precision import bf16_eager_attention

    low = copy.deepcopy(module).to(torch.bfloat16).eval()
    device = next(low.parameters()).device
    if device.type == "cpu" and bf16_eager_attention():
        for sub in low.modules():
            config = getattr(sub, "config", None)
            if (hasattr(sub, "set_attn_implementation") and getattr(config, "_attn_implementation", None) == "sdpa"
                    and int(getattr(config, "max_position_embeddings", 0) or 0) <= EAGER_ATTENTION_MAX_POSITIONS):
                sub.set_attn_implementation("eager")
    return low


# Eager attention holds a (batch, heads, length, length) score matrix: up to 512 positions that
# is 200 MB per layer at batch 32 with 12 heads in bf16; longer models keep SDPA's kernel.
EAGER_ATTENTION_MAX_POSITIONS = 512


class OnnxInt8Features:
    """An encoder's features graph (tokens -> pooled, normalised features) exported to ONNX,
    quantised to int8 by onnxruntime (int8 weights per output channel, activations per batch)
    and run by onnxruntime on the CPU.

    Built with the ONNX export code of :mod:`textransfer.export` (``textransfer export --int8``
    makes the same graph); needs the ``onnx`` extra. Exporting MiniLM takes tens of seconds,
    once per encoder and weight state.

    Args:
        features: the fp32 ``nn.Module`` taking a dict of token tensors (a copy is exported).
        example: a batch of token tensors (int64) with the input names the graph takes.
    """

    def __init__(self, features: Any, example: dict[str, Any]) -> None:
        import tempfile
        from pathlib import Path

        import torch

        from textransfer._optional import require

        require("onnxruntime", extra="onnx", feature="precision 'int8'")
        require("onnxscript", extra="onnx", feature="precision 'int8' (torch.onnx dynamo exporter)")
        import onnxruntime as ort

        from textransfer.encoders.onnx_graph import graph_modules, quantize_int8, torch_export

        graph = graph_modules()["ProbabilityGraph"](features, torch.nn.Identity()).eval()
        self.input_names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in example]
        inputs: dict[str, Any] = {k: example[k].long() for k in self.input_names}
        with tempfile.TemporaryDirectory(prefix="textransfer-int8-") as tmp:
            fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            torch_export(graph, inputs, fp32, None)
            quantize_int8(fp32, int8)
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            self.session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: dict[str, Any]) -> np.ndarray:
        """float32 features ``(n, dim)`` of a batch of token tensors."""
        feed = {k: batch[k].numpy().astype(np.int64, copy=False) for k in self.input_names}
        return self.session.run(None, feed)[0]


def _weights_version(module: Any) -> tuple[int, int]:
    """Changes whenever a parameter is modified in place (optimizer steps bump ``_version``)."""
    params = list(module.parameters())
    return id(module), sum(int(p._version) for p in params)


class LowPrecisionCache:
    """Holds a low-precision copy of a module (int8 or bf16), rebuilt when the module or its
    weights change.

    Args:
        build: makes the copy from the fp32 module (:func:`quantize_int8` or :func:`to_bf16`).
    """

    def __init__(self, build: Callable[[Any], Any]) -> None:
        self._build = build
        self._key: tuple[int, int] | None = None
        self._module: Any = None

    def get(self, module: Any) -> Any:
        """The copy of ``module`` (built on first use and after weight updates)."""
        key = _weights_version(module)
        if self._module is None or key != self._key:
            self._module = None  # free the old copy before building the new one
            self._module = self._build(module)
            self._key = key
        return self._module


def runner_for(
    precision: str,
    module: Any,
    caches: dict[str, LowPrecisionCache],
    who: str,
    features: Callable[[Any], Any] | None = None,
    example: Callable[[], dict[str, Any]] | None = None,
) -> Any:
    """What encodes at ``precision``: ``module`` itself (fp32), its cached bf16 copy, or (int8,
    CPU only) the cached :class:`OnnxInt8Features` of its features graph.

    Args:
        precision: the resolved precision (``fp32``, ``bf16`` or ``int8``).
        module: the fp32 module.
        caches: the encoder's caches, one per precision, filled on first use.
        who: the encoder's name, for messages.
        features: int8: wraps ``module`` into the graph ``tokens dict -> features``.
        example: int8: a batch of token tensors to export with.
    """
    if precision == "fp32":
        return module
    device = next(module.parameters()).device
    if precision == "int8" and device.type != "cpu":
        raise ValueError(f"{who}: precision='int8' runs on the CPU; the model is on {device}")
    if precision not in caches:
        if precision == "int8":
            assert features is not None and example is not None
            caches[precision] = LowPrecisionCache(lambda m: OnnxInt8Features(features(copy.deepcopy(m).eval()), example()))
        else:
            caches[precision] = LowPrecisionCache(to_bf16)
    return caches[precision].get(module)


def precision_digest(precision: str) -> str:
    """What a precision adds to an encoder's state digest: its scheme (fp32 adds nothing, so
    fp32 fingerprints are those of earlier versions)."""
    return {"int8": INT8_SCHEME, "bf16": BF16_SCHEME}.get(precision, "")
