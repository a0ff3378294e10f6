"""ONNX graphs of textransfer's torch modules: the torch modules an export is made of, the
exporter call and onnxruntime's int8 quantisation.

Used by ``textransfer export`` (:mod:`textransfer.export`: a whole classifier as one graph) and
by the encoders' ``precision: int8`` (the features graph of an encoder, run by onnxruntime).
torch, onnx and onnxruntime are imported inside the functions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CHECK_TEXTS", "graph_modules", "quantize_int8", "torch_export"]

# Parity-check texts: short and long, padding, casing, spaces around (the sentence encoder strips).
CHECK_TEXTS = (
    "a great phone",
    "  The battery died after two days, and the screen is dull.  ",
    "An awful film: the plot goes nowhere, the actors look bored and it lasts three hours.",
    "ok",
    "I LOVED IT!!! Best purchase of the year, would buy it again without thinking twice.",
    "",
)


# -- torch graph: encoder features + head -> probabilities ------------------------------------


def graph_modules() -> dict[str, type]:
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
        prototypes: torch.Tensor  # a buffer (register_buffer): nn.Module types it as Tensor | Module

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


def torch_export(graph: Any, inputs: dict[str, Any], path: Path, opset: int | None) -> None:
    """Exports ``graph(**inputs)`` to the ONNX file ``path`` (torch dynamo exporter; batch and sequence dimensions dynamic)."""
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


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """Dynamic quantisation with onnxruntime: int8 weights with one scale per output channel.

    Activations are quantised per batch. (MiniLM + logreg, 500 product sentences: per-tensor scales
    changed 5.4% of the labels against torch fp32, per-channel 3.6%; torch int8 2%.)

    First its recommended pre-processing (ONNX shape inference, graph optimisation); its symbolic
    shape inference does not complete on torch.export graphs and is skipped."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = fp32_path.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
    quantize_dynamic(str(pre), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    pre.unlink()
