"""Torch parts of DANN: the gradient reversal layer and the adversarial module.

Imported lazily by ``strategies/dann.py`` (this module imports torch at the top).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from textransfer.training.model import EncoderWithHead

TARGET_PREFIX = "target_"


class _GradReverse(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``-lambda``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """Gradient reversal layer (Ganin et al. 2016): ``y = x``, ``dL/dx = -lam * dL/dy``.

    Args:
        x: features ``(n, dim)``.
        lam: the reversal strength lambda >= 0.

    Returns:
        ``x`` unchanged, with reversed gradient.
    """
    return _GradReverse.apply(x, float(lam))


def lambda_schedule(progress: float, gamma: float = 10.0, lambda_max: float = 1.0) -> float:
    """Ganin et al.'s ramp ``lambda_max * (2 / (1 + exp(-gamma p)) - 1)``, 0 at p=0 -> ~lambda_max at p=1."""
    p = min(max(progress, 0.0), 1.0)
    return lambda_max * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


class DANNModule(nn.Module):
    """Label classifier + domain classifier on the pooled features of one TrainableEncoder.

    ``forward(labels, **batch)``: source inputs under their usual keys, target inputs under
    ``target_<key>`` (training batches only). Loss = cross-entropy on source labels + domain
    cross-entropy (source = 0, target = 1) behind a gradient reversal layer, so the domain
    classifier learns to tell the domains apart while the encoder learns to make them alike.
    Validation batches (no target keys) give the label loss only.

    Args:
        model: an ``EncoderWithHead`` (``model._encoder.forward`` pools, ``model.head`` classifies).
        dim: feature size.
        total_steps: training forward passes, for the lambda schedule's progress ``p``.
        hidden: domain classifier hidden size.
        gamma: schedule steepness (10 in the paper).
        lambda_max: the schedule's final lambda.
    """

    def __init__(self, model: EncoderWithHead, dim: int, total_steps: int, hidden: int = 256, gamma: float = 10.0,
                 lambda_max: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.domain = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, 2))
        self.total_steps = max(int(total_steps), 1)
        self.gamma, self.lambda_max = float(gamma), float(lambda_max)
        self.step = 0
        self.last: dict[str, float] = {}

    def forward(self, labels: torch.Tensor | None = None, **batch: Any) -> dict[str, torch.Tensor]:
        encoder = self.model._encoder
        target = {k[len(TARGET_PREFIX):]: v for k, v in batch.items() if k.startswith(TARGET_PREFIX)}
        source = {k: v for k, v in batch.items() if not k.startswith(TARGET_PREFIX)}
        f_s = encoder.forward(source)  # (n_s, dim)
        out = self.model.head(f_s, labels)
        if self.training and target:
            lam = lambda_schedule(self.step / self.total_steps, self.gamma, self.lambda_max)
            self.step += 1
            f_t = encoder.forward(target)  # (n_t, dim)
            feats = torch.cat([f_s, f_t])
            d = torch.cat([torch.zeros(len(f_s), dtype=torch.long), torch.ones(len(f_t), dtype=torch.long)]).to(feats.device)
            d_loss = nn.functional.cross_entropy(self.domain(grad_reverse(feats, lam)).float(), d)
            self.last = {"lambda": lam, "domain_loss": float(d_loss.detach())}
            out["loss"] = out["loss"] + d_loss
        return out


class PairedCollator:
    """``collate_fn``: source row indices -> source batch + labels + an equal-size random target batch."""

    def __init__(self, collate: Callable[[list[Any]], dict[str, Any]], inputs: Sequence[Any], labels: np.ndarray,
                 target: Sequence[Any], seed: int) -> None:
        self.collate, self.inputs, self.target = collate, list(inputs), list(target)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.rng = np.random.default_rng(seed)

    def __call__(self, indices: list[int]) -> dict[str, Any]:
        batch = dict(self.collate([self.inputs[i] for i in indices]))
        batch["labels"] = torch.from_numpy(self.labels[indices])
        tgt_idx = self.rng.choice(len(self.target), size=min(len(indices), len(self.target)), replace=False)
        for k, v in self.collate([self.target[i] for i in tgt_idx]).items():
            batch[TARGET_PREFIX + k] = v
        return batch
