"""The ``nn.Module`` the loop trains when fine-tuning: encoder body + head, one forward.

Imported lazily (it imports torch at module level); nothing registry-loaded imports it at the top.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class EncoderWithHead(nn.Module):
    """``forward(**batch) -> {"logits": (n, k), "loss": scalar}`` over a TrainableEncoder + head.

    The features come from ``encoder.forward`` — the very function ``encoder.encode`` uses — so a
    :class:`~textransfer.classifier.Classifier` built from the trained parts predicts what this
    module computes (same pooling, same normalisation).

    Args:
        encoder: a TrainableEncoder; its ``module`` becomes the ``body`` submodule.
        head_module: the head's ``nn.Module``, ``(features, labels=None) -> {"logits", "loss"}``.
    """

    def __init__(self, encoder: Any, head_module: nn.Module) -> None:
        super().__init__()
        self.body = encoder.module
        self.head = head_module
        # A plain attribute, not a submodule: its parameters are already registered via `body`.
        self._encoder = encoder

    def forward(self, labels: torch.Tensor | None = None, **batch: Any) -> dict[str, torch.Tensor]:
        features = self._encoder.forward(batch)  # (n, dim)
        return self.head(features, labels)


def unused_parameters(model: nn.Module, batch: dict[str, Any]) -> list[nn.Parameter]:
    """Parameters that get no gradient from one forward/backward pass on ``batch``.

    E.g. BERT's pooler when the features are mean-pooled token states. Keeping them frozen keeps
    multi-process training (DDP) from waiting for gradients that never come.
    """
    params = [p for p in model.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
        p.grad = None
    was_training = model.training
    model.train()
    try:
        model(**batch)["loss"].backward()
        unused = [p for p in params if p.grad is None]
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.grad = None
            p.requires_grad_(flag)
        model.train(was_training)
    return unused
