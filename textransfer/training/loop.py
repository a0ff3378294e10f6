"""The one training loop. Hugging Face Accelerate owns devices, precision and processes here;
nothing else in textransfer moves tensors between devices or sets up autocast.

``train`` fits any ``nn.Module`` whose ``forward(**batch)`` returns ``{"loss", "logits"}`` (the
batch holds ``labels``). Validation runs each epoch through ``gather_for_metrics``; early stopping
watches ``TrainingArgs.metric`` and the best weights are restored at the end.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

logger = logging.getLogger("textransfer.training")


@dataclass
class TrainingArgs:
    """Optimisation settings (the ``training:`` section of a config).

    Attributes:
        epochs: passes over the training data.
        batch_size: examples per optimiser step and process (before accumulation).
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay (not applied to biases and norms).
        warmup_ratio: fraction of steps with linear warmup, then linear decay to 0.
        grad_accum: batches accumulated per optimiser step.
        max_grad_norm: gradient clipping norm (None: no clipping).
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` (GPU); handled by Accelerate.
        metric: validation metric for early stopping and best-weights selection.
        patience: epochs without improvement before stopping (None: never stop early).
        seed: seeds data order, dropout and initialisation.
        progress: show a tqdm bar.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    grad_accum: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    metric: Literal["accuracy", "macro_f1", "loss"] = "accuracy"
    patience: int | None = 3
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"training.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"training.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"training.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What ``train`` reports: per-epoch history and the selected epoch."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


def set_seed(seed: int) -> None:
    """Seeds Python, NumPy and torch (all devices)."""
    from accelerate.utils import set_seed as _set_seed

    _set_seed(seed)


def param_groups(module: Any, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups over trainable parameters only: no weight decay for biases and norm weights."""
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "lr": lr}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "lr": lr})
    return [g for g in groups if g["params"]]


def _score(metric: str, loss: float, y: np.ndarray, pred: np.ndarray) -> float:
    if metric == "loss":
        return -loss  # higher is better everywhere below
    if metric == "accuracy":
        return float((y == pred).mean()) if len(y) else 0.0
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", zero_division=0))


def evaluate(accelerator: Any, module: Any, loader: Iterable[dict[str, Any]]) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean loss, labels and predicted ids over ``loader``, gathered across processes."""
    import torch

    module.eval()
    losses, ys, preds = [], [], []
    with torch.no_grad():
        for batch in loader:
            out = module(**batch)
            logits, labels = accelerator.gather_for_metrics((out["logits"], batch["labels"]))
            losses.append(float(out["loss"]) * len(batch["labels"]))
            ys.append(labels.cpu().numpy())
            preds.append(logits.argmax(-1).cpu().numpy())
    n = sum(len(y) for y in ys) or 1
    return sum(losses) / n, np.concatenate(ys), np.concatenate(preds)


def train(
    module: Any,
    train_loader: Any,
    val_loader: Any | None = None,
    args: TrainingArgs | None = None,
    optimizer_groups: list[dict[str, Any]] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
) -> TrainResult:
    """Trains ``module`` in place and returns the history.

    Args:
        module: ``nn.Module``; ``module(**batch)`` -> ``{"loss": scalar, "logits": (n, k)}``.
        train_loader: a torch DataLoader of dict batches that include ``labels``.
        val_loader: optional DataLoader for per-epoch validation and early stopping.
        args: optimisation settings.
        optimizer_groups: AdamW parameter groups (default: :func:`param_groups`); lets callers
            give layer-wise learning rates. Only ``requires_grad`` parameters may appear.
        on_epoch_start: called with the epoch index before each epoch (e.g. gradual unfreezing).
    """
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    args = args or TrainingArgs()
    set_seed(args.seed)
    accelerator = Accelerator(mixed_precision=args.mixed_precision, gradient_accumulation_steps=args.grad_accum)
    groups = optimizer_groups or param_groups(module, args.lr, args.weight_decay)
    if not groups:
        raise TrainingError("no trainable parameters: everything is frozen")
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    steps = math.ceil(len(train_loader) / args.grad_accum) * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * steps), steps)
    module, optimizer, train_loader, scheduler = accelerator.prepare(module, optimizer, train_loader, scheduler)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)

    result = TrainResult()
    best_state: dict[str, Any] | None = None
    bad_epochs = 0
    for epoch in range(args.epochs):
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        module.train()
        total, seen = 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{args.epochs}", disable=not args.progress or not accelerator.is_local_main_process)
        for batch in bar:
            with accelerator.accumulate(module):
                loss = module(**batch)["loss"]
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"loss became {loss.item()} at epoch {epoch + 1}: lower training.lr, "
                        "enable training.max_grad_norm, or check the inputs; no model was written"
                    )
                accelerator.backward(loss)
                if args.max_grad_norm and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(module.parameters(), args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            total += loss.item() * len(batch["labels"])
            seen += len(batch["labels"])
            bar.set_postfix(loss=f"{total / max(seen, 1):.4f}")
        row = {"epoch": epoch + 1, "train_loss": total / max(seen, 1)}
        if val_loader is not None:
            val_loss, y, pred = evaluate(accelerator, module, val_loader)
            score = _score(args.metric, val_loss, y, pred)
            row.update(val_loss=val_loss, val_accuracy=_score("accuracy", val_loss, y, pred))
            if result.best_metric is None or score > result.best_metric:
                result.best_metric, result.best_epoch, bad_epochs = score, epoch + 1, 0
                best_state = copy.deepcopy(accelerator.unwrap_model(module).state_dict())
            else:
                bad_epochs += 1
        result.history.append(row)
        logger.info("epoch %s", {k: round(v, 4) for k, v in row.items()})
        if args.patience is not None and val_loader is not None and bad_epochs >= args.patience:
            result.stopped_early = True
            break
    unwrapped = accelerator.unwrap_model(module)
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    unwrapped.eval()
    accelerator.free_memory()
    return result
