"""Fine-tuning: encoder and head trained end to end, with a declarative freezing spec.

Config (the fine-tuning-specific settings live in ``strategy:``; the optimisation settings shared
by every strategy — ``lr``, ``epochs``, ``batch_size``, warmup, accumulation, clipping,
``mixed_precision``, early stopping — in ``training:``)::

    encoder: {name: transformer, model: all-MiniLM-L6-v2, max_length: 64}
    strategy:
      name: finetune
      head: linear
      freeze_embeddings: false
      freeze_bottom: 0          # bottom k transformer layers stay fixed
      gradual_unfreezing: false # ULMFiT: head only first, then one more group per epoch
      layer_lr_decay: 1.0       # each lower group: lr x decay
      head_lr: null             # default: training.lr
    training: {lr: 5.0e-5, epochs: 3, batch_size: 32, warmup_ratio: 0.1}

No torch import at module level: the strategy registry imports this module.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Protocol, cast

from textransfer.classifier import Classifier
from textransfer.data.labeled import LabeledTexts
from textransfer.encoders.base import ENCODERS, Encoder, TrainableEncoder
from textransfer.heads.base import Head, TorchHead
from textransfer.strategies.base import (
    CapabilityError,
    FitContext,
    FitResult,
    Strategy,
    register_strategy,
)
from textransfer.training.args import TrainingArgs
from textransfer.training.freezing import FreezePlan, FreezeSpec


class _TrainedEncoder(Protocol):
    """What :func:`mark_trained` touches on a TrainableEncoder (for type checkers only)."""

    module: Any
    weights_modified: bool


def mark_trained(encoder: Encoder) -> None:
    """Flags a trained TrainableEncoder's weights as modified (``save()`` then writes them) and
    puts its module in eval mode."""
    trained = cast(_TrainedEncoder, encoder)  # checked by FinetuneStrategy.check before training
    trained.weights_modified = True
    trained.module.eval()

logger = logging.getLogger("textransfer.strategies")

DEFAULT_LR = 5e-5  # BERT-style fine-tuning; the loop's own default (1e-3) suits heads only
_TRAINABLE_MEMBERS = ("module", "collate", "forward", "layer_groups")  # TrainableEncoder


def missing_trainable_members(encoder: Any) -> list[str]:
    """The TrainableEncoder members ``encoder`` lacks, looked up on its class (a property such
    as a lazy ``module`` is not evaluated: no weights are loaded) and its instance attributes."""
    own = getattr(encoder, "__dict__", {})
    return [m for m in _TRAINABLE_MEMBERS if not hasattr(type(encoder), m) and m not in own]


def trainable_encoder_names() -> list[str]:
    """Registered encoders whose class provides the TrainableEncoder members."""
    return [n for n in ENCODERS.names() if all(hasattr(ENCODERS.get(n), m) for m in _TRAINABLE_MEMBERS)]


@register_strategy("finetune")
class FinetuneStrategy(Strategy):
    """Trains a TrainableEncoder and a torch head together with the one training loop.

    Freezing, gradual unfreezing and layer-wise learning rates work on the encoder's
    ``layer_groups()`` (bottom -> top), so any TrainableEncoder — text or vision — can use them.
    Parameters that get no gradient from the forward pass (e.g. BERT's pooler under mean
    pooling) are kept frozen. Checkpoints go to the context's ``checkpoint_dir`` (the runner's
    ``<run_dir>/checkpoints``) at the end of every epoch; ``resume`` continues from there. Without
    a context, :meth:`fit` takes them from the attributes ``checkpoint_dir`` (default None: no
    checkpoints) and ``resume``.

    Args:
        freeze_embeddings: keep the input groups (embeddings) fixed.
        freeze_bottom: keep the bottom ``k`` layers fixed (0 .. number of layers).
        gradual_unfreezing: head only in epoch 1, then one more group from the top per epoch.
        layer_lr_decay: the top group trains at ``training.lr``, each lower one at ``x decay``.
        head_lr: the head's learning rate (default: ``training.lr``).
        val_fraction: share of ``train`` held out for validation when no ``val`` is given.
        max_train_rows: train on a seeded, stratified subsample of this many rows (a documented
            budget for CPU runs; the fit info's ``train_rows`` reports what was used).

    Example:
        >>> strategy = create_strategy("finetune", freeze_bottom=3, layer_lr_decay=0.9)  # doctest: +SKIP
        >>> clf = strategy.fit(create_encoder("transformer"), create_head("linear"), train)  # doctest: +SKIP
    """

    trains_encoder = True
    supports_checkpoints = True
    source_only = True  # target_unlabeled is never read

    def __init__(
        self,
        freeze_embeddings: bool = False,
        freeze_bottom: int = 0,
        gradual_unfreezing: bool = False,
        layer_lr_decay: float = 1.0,
        head_lr: float | None = None,
        val_fraction: float = 0.1,
        max_train_rows: int | None = None,
    ) -> None:
        super().__init__()
        self.spec = FreezeSpec(bool(freeze_embeddings), int(freeze_bottom), bool(gradual_unfreezing))
        if not 0.0 < layer_lr_decay <= 1.0:
            raise ValueError(f"finetune: layer_lr_decay must be in (0, 1], got {layer_lr_decay}")
        if head_lr is not None and head_lr <= 0:
            raise ValueError(f"finetune: head_lr must be > 0 (or null for training.lr), got {head_lr}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"finetune: val_fraction must be in [0, 1), got {val_fraction}")
        self.layer_lr_decay = float(layer_lr_decay)
        self.head_lr = None if head_lr is None else float(head_lr)
        self.val_fraction = float(val_fraction)
        if max_train_rows is not None and max_train_rows < 2:
            raise ValueError(f"{self.name}: max_train_rows must be >= 2 (or null for all rows), got {max_train_rows}")
        self.max_train_rows = max_train_rows
        # Conveniences for `fit` without a context (see `context`); the experiments pass theirs.
        self.checkpoint_dir: str | Path | None = None
        self.resume = False

    def config(self) -> dict[str, Any]:
        return {
            "freeze_embeddings": self.spec.freeze_embeddings,
            "freeze_bottom": self.spec.freeze_bottom,
            "gradual_unfreezing": self.spec.gradual_unfreezing,
            "layer_lr_decay": self.layer_lr_decay,
            "head_lr": self.head_lr,
            "val_fraction": self.val_fraction,
            "max_train_rows": self.max_train_rows,
        }

    def context(self, given: FitContext | None = None) -> FitContext:
        """``given``, or this strategy's settings with its ``checkpoint_dir`` and ``resume``."""
        if given is not None:
            return given
        folder = None if self.checkpoint_dir is None else Path(self.checkpoint_dir)
        return dataclasses.replace(super().context(), checkpoint_dir=folder, resume=self.resume)

    @property
    def lr(self) -> float:
        return self.lr_of(self.training)

    @staticmethod
    def lr_of(training: TrainingArgs) -> float:
        """The encoder's peak learning rate: ``training.lr``, or fine-tuning's default."""
        return training.lr if training.lr is not None else DEFAULT_LR

    def check(self, encoder: Encoder, head: Head) -> None:
        """Raises :class:`CapabilityError` when ``encoder`` or ``head`` cannot be fine-tuned."""
        missing = missing_trainable_members(encoder)
        if missing:
            raise CapabilityError(
                f"finetune needs an encoder whose weights can be trained; {encoder.name!r} cannot "
                f"(it lacks {', '.join(missing)}). "
                f"Trainable encoders: {', '.join(trainable_encoder_names())}; or use strategy: frozen"
            )
        if not isinstance(head, TorchHead):
            raise CapabilityError(
                f"finetune trains the head by backpropagation together with the encoder; head "
                f"{head.name!r} is not a torch module. Use head: linear or mlp, or strategy: frozen"
            )

    def prepare(
        self, encoder: Encoder, head: Head, num_classes: int, probe: list[Any], training: TrainingArgs | None = None
    ) -> tuple[Any, FreezePlan]:
        """Builds the trained module and its freeze plan (all eventually trainable groups on).

        Args:
            encoder: a TrainableEncoder.
            head: a TorchHead (built here for ``encoder.dim`` features and ``num_classes``).
            num_classes: number of classes.
            probe: a few training inputs for finding the parameters no gradient reaches.
            training: the fit's settings (its seed seeds the head); default ``self.training``.

        Returns:
            ``(module, plan)``: ``module(**batch) -> {"loss", "logits"}``; ``plan.apply(stage)``
            sets the freezing of a gradual-unfreezing stage.
        """
        import torch

        from textransfer.training.loop import set_seed
        from textransfer.training.model import EncoderWithHead, unused_parameters

        self.check(encoder, head)
        set_seed((training or self.training).seed)  # the head's initial weights are part of a repeatable run
        trainable, torch_head = cast(TrainableEncoder, encoder), cast(TorchHead, head)  # check() passed
        plan = FreezePlan(trainable.layer_groups(), self.spec)
        head.build(encoder.dim, num_classes)
        # The new head joins the encoder where it is: on the GPU after an earlier training run
        # (self_train's later rounds), where this probe pass and the training loop expect it.
        device = next(trainable.module.parameters()).device
        torch_head.module.to(device)
        model = EncoderWithHead(encoder, torch_head.module)
        batch = trainable.collate(list(probe))
        batch["labels"] = (torch.arange(len(probe)) % num_classes).to(device)
        unused = unused_parameters(model, batch)
        if unused:
            logger.info("finetune: %d parameter tensors get no gradient (e.g. an unused pooler); kept frozen", len(unused))
        plan.exclude(unused)
        plan.apply(None)
        return model, plan

    def subsample(self, train: LabeledTexts, seed: int | None = None) -> LabeledTexts:
        """``train`` cut to ``max_train_rows`` (stratified; ``seed`` default ``training.seed``), or
        as it is."""
        if self.max_train_rows is None or len(train) <= self.max_train_rows:
            return train
        from textransfer.data.splits import stratified_subsample

        return stratified_subsample(train, self.max_train_rows, seed=self.training.seed if seed is None else seed)

    def split_validation(
        self, train: LabeledTexts, val: LabeledTexts | None, seed: int | None = None
    ) -> tuple[LabeledTexts, LabeledTexts | None]:
        """``(train, val)``: without labeled ``val``, ``val_fraction`` of ``train`` is held out
        (stratified; ``seed`` default ``training.seed``) to pick the best epoch, when ``train``
        has at least 20 rows."""
        if (val is None or val.labels is None) and self.val_fraction > 0 and len(train) >= 20:
            from textransfer.data.splits import stratified_split

            return stratified_split(train, self.val_fraction, seed=self.training.seed if seed is None else seed)
        return train, val

    def optimizer_groups(
        self, plan: FreezePlan, head: Head, training: TrainingArgs | None = None
    ) -> list[dict[str, Any]]:
        """Layer-wise AdamW groups (see :meth:`FreezePlan.optimizer_groups`) for ``training``
        (default ``self.training``)."""
        args = training or self.training
        return plan.optimizer_groups(
            list(cast(TorchHead, head).module.parameters()), self.lr_of(args), self.head_lr, self.layer_lr_decay,
            args.weight_decay,
        )

    def fit_with_context(
        self,
        encoder: Encoder,
        head: Head,
        train: LabeledTexts,
        *,
        val: LabeledTexts | None = None,
        target_unlabeled: LabeledTexts | None = None,
        context: FitContext | None = None,
    ) -> FitResult:
        from textransfer.training.batching import input_loader
        from textransfer.training.loop import train as train_loop

        ctx = self.context(context)
        args, seed = ctx.training, ctx.training.seed
        self.check(encoder, head)
        label_map = self.label_map_for(train)
        train = self.subsample(train, seed)
        train, val = self.split_validation(train, val, seed)
        y = label_map.encode(train.labels or [])
        model, plan = self.prepare(encoder, head, len(label_map), train.texts[: min(8, len(train))], args)
        loader = input_loader(encoder, train.texts, y, args.batch_size, shuffle=True, seed=seed)
        val_loader = None
        if val is not None and val.labels is not None:
            val_loader = input_loader(encoder, val.texts, label_map.encode(val.labels), args.batch_size, shuffle=False)
        gradual = self.spec.gradual_unfreezing
        if gradual and args.epochs < plan.num_stages:
            logger.warning(
                "finetune: gradual_unfreezing over %d epochs reaches only the top %d of %d groups; "
                "use training.epochs >= %d to unfreeze all", args.epochs, args.epochs - 1,
                plan.num_stages - 1, plan.num_stages,
            )
        result = train_loop(
            model, loader, val_loader, args,
            optimizer_groups=self.optimizer_groups(plan, head, args),
            on_epoch_start=plan.apply if gradual else None,
            checkpoint_dir=ctx.checkpoint_dir,
            resume=ctx.resume,
            find_unused_parameters=gradual,
        )
        plan.apply(None)  # leave the encoder trainable-as-configured, not at a gradual stage
        mark_trained(encoder)  # save() writes the weights
        info = {
            "train_rows": len(train) + (0 if val is None else len(val)),
            "val_rows": 0 if val is None else len(val),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "mixed_precision": result.mixed_precision,
            "stopped_early": result.stopped_early,
            "resumed_from": result.resumed_from,
            "active_groups": plan.active_groups(None),
        }
        classifier = Classifier(encoder, head, label_map, strategy={"name": self.name, "kwargs": self.config()})
        return FitResult(classifier, info)

