"""AdamW for the training loop: parameter groups (no weight decay for biases and norms), the
kernel ``training.optimizer_kernel`` names, and BERT's linear warmup/decay schedule."""

from __future__ import annotations

from typing import Any

from textransfer.training.args import OptimizerKernel


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


def param_groups(module: Any, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups over trainable parameters only: no weight decay for biases and norm weights."""
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "lr": lr}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "lr": lr})
    return [g for g in groups if g["params"]]


def make_optimizer(groups: list[dict[str, Any]], lr: float, kernel: OptimizerKernel = "auto") -> Any:
    """AdamW with the kernel ``training.optimizer_kernel`` names.

    ``auto``: the fused kernel (one pass over all tensors; what Trainer uses on torch >= 2.8)
    where torch has it for these tensors, else torch's default. On a 2-core Xeon a whole MiniLM-L6
    training step (batch 32) ran 1.38x faster with it than with the for-loop AdamW (median of
    three repeats on a busy machine; ``bench/train_step_speed.py``, docs/benchmark-notes.md).
    ``fused`` / ``foreach`` / ``for-loop``: that kernel, or an error where torch lacks it.
    """
    import torch

    if kernel == "auto":
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):  # older torch, or an unsupported device/dtype
            return torch.optim.AdamW(groups, lr=lr)
    try:
        if kernel == "fused":
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        return torch.optim.AdamW(groups, lr=lr, foreach=kernel == "foreach")
    except (RuntimeError, TypeError, ValueError) as exc:
        raise TrainingError(
            f"training.optimizer_kernel {kernel!r} is not available here ({exc}); use optimizer_kernel: auto"
        ) from None


def linear_warmup_schedule(optimizer: Any, warmup_steps: int, total_steps: int) -> Any:
    """The learning rate rises linearly from 0 over ``warmup_steps``, then falls linearly to 0
    at ``total_steps`` (BERT's schedule; the same factors as transformers'
    ``get_linear_schedule_with_warmup``), as a torch ``LambdaLR``."""
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
