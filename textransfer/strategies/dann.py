"""DANN: domain-adversarial fine-tuning (Ganin et al. 2016, "Domain-Adversarial Training of
Neural Networks", JMLR 17).

A domain classifier on the encoder's pooled features learns to tell source from target texts; a
gradient reversal layer between them makes the encoder learn features the domain classifier
cannot separate, while the head learns the source labels. Lambda ramps from 0 to ``lambda_max``
with ``2 / (1 + exp(-gamma p)) - 1`` over training progress ``p``. Target texts come without
labels (``target_unlabeled``). Built on the fine-tuning strategy: the same freezing options,
layer-wise learning rates and the one training loop. Model selection (best epoch) uses a
held-out part of the *source* training data, never target labels.

Config::

    strategy: {name: dann, head: linear, max_source_rows: 2000, lambda_max: 1.0, head_lr: 1.0e-3}
    training: {lr: 2.0e-5, epochs: 2, batch_size: 32}
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

import numpy as np

from textransfer.classifier import Classifier
from textransfer.data.labeled import LabeledTexts
from textransfer.encoders.base import Encoder, TrainableEncoder
from textransfer.heads.base import Head
from textransfer.strategies.base import (
    FitContext,
    FitResult,
    register_strategy,
    require_target_texts,
)
from textransfer.strategies.finetune import FinetuneStrategy, mark_trained

logger = logging.getLogger("textransfer.strategies")


@register_strategy("dann")
class DANNStrategy(FinetuneStrategy):
    """Domain-adversarial fine-tuning of a TrainableEncoder with a torch head.

    Args:
        lambda_max: final weight of the reversed domain gradient.
        gamma: steepness of the lambda ramp (10 in the paper).
        domain_hidden: hidden units of the domain classifier (an MLP on pooled features).
        domain_lr: the domain classifier's learning rate (default: the head's).
        max_source_rows: train on a seeded, stratified subsample of this many source rows (CPU
            budgets; reported as ``train_rows``).
        max_target_rows: use at most this many unlabeled target texts.
        freeze_embeddings, freeze_bottom, layer_lr_decay, head_lr, val_fraction: as in finetune.

    Example:
        >>> clf = DANNStrategy().fit(create_encoder("transformer"), create_head("linear"), movies,
        ...                          target_unlabeled=products.without_labels())  # doctest: +SKIP
    """

    needs_target_texts = True
    source_only = False  # FinetuneStrategy's, undone: DANN reads the target texts
    supports_checkpoints = False  # the adversarial run writes no epoch checkpoints

    def __init__(
        self,
        lambda_max: float = 1.0,
        gamma: float = 10.0,
        domain_hidden: int = 256,
        domain_lr: float | None = None,
        max_source_rows: int | None = None,
        max_target_rows: int | None = None,
        freeze_embeddings: bool = False,
        freeze_bottom: int = 0,
        layer_lr_decay: float = 1.0,
        head_lr: float | None = None,
        val_fraction: float = 0.1,
    ) -> None:
        super().__init__(freeze_embeddings, freeze_bottom, False, layer_lr_decay, head_lr, val_fraction,
                         max_train_rows=max_source_rows)
        if lambda_max < 0 or gamma <= 0 or domain_hidden < 1:
            raise ValueError(f"dann: need lambda_max >= 0, gamma > 0, domain_hidden >= 1; got {lambda_max}, {gamma}, {domain_hidden}")
        if max_target_rows is not None and max_target_rows < 2:
            raise ValueError(f"dann: max_target_rows must be >= 2 (or null for all rows), got {max_target_rows}")
        self.lambda_max, self.gamma, self.domain_hidden = float(lambda_max), float(gamma), int(domain_hidden)
        self.domain_lr = None if domain_lr is None else float(domain_lr)
        self.max_target_rows = max_target_rows

    def config(self) -> dict[str, Any]:
        cfg = {k: v for k, v in super().config().items() if k not in ("gradual_unfreezing", "max_train_rows")}
        return {**cfg, "lambda_max": self.lambda_max, "gamma": self.gamma, "domain_hidden": self.domain_hidden,
                "domain_lr": self.domain_lr, "max_source_rows": self.max_train_rows, "max_target_rows": self.max_target_rows}

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
        from textransfer.strategies._dann_modules import DANNModule, PairedCollator
        from textransfer.training.batching import LengthGroupedBatchSampler, input_loader
        from textransfer.training.loop import train as train_loop

        ctx = self.context(context)
        target_unlabeled = require_target_texts(self.name, target_unlabeled)
        self.check(encoder, head)
        label_map = self.label_map_for(train)
        seed, args = ctx.training.seed, ctx.training
        train = self.subsample(train, seed)
        target = list(target_unlabeled.texts)  # texts only: target labels never enter this method
        if self.max_target_rows is not None and len(target) > self.max_target_rows:
            keep = np.sort(np.random.default_rng(seed).choice(len(target), self.max_target_rows, replace=False))
            target = [target[i] for i in keep]
        train, val = self.split_validation(train, val, seed)
        y = label_map.encode(train.labels or [])
        model, plan = self.prepare(encoder, head, len(label_map), train.texts[: min(8, len(train))], args)

        from torch.utils.data import DataLoader, Dataset

        lengths = [len(t) if isinstance(t, str) else 0 for t in train.texts]
        sampler = LengthGroupedBatchSampler(lengths, args.batch_size, shuffle=True, seed=seed)
        collate = PairedCollator(cast(TrainableEncoder, encoder).collate, train.texts, y, target, seed)
        # The row numbers, a list, serve as the map-style dataset the collator indexes with.
        loader: DataLoader[int] = DataLoader(cast("Dataset[int]", list(range(len(train)))), batch_sampler=sampler,
                                             collate_fn=collate)
        val_loader = None
        if val is not None and val.labels is not None:
            val_loader = input_loader(encoder, val.texts, label_map.encode(val.labels), args.batch_size, shuffle=False)
        dann = DANNModule(model, encoder.dim, math.ceil(len(train) / args.batch_size) * args.epochs,
                          self.domain_hidden, self.gamma, self.lambda_max)
        groups = self.optimizer_groups(plan, head, args)
        domain_lr = self.domain_lr or self.head_lr or self.lr_of(args)
        groups.append({"params": list(dann.domain.parameters()), "lr": domain_lr, "weight_decay": 0.0, "group": "domain"})
        result = train_loop(dann, loader, val_loader, args, optimizer_groups=groups)
        mark_trained(encoder)  # save() writes the weights
        info = {
            "train_rows": len(train) + (0 if val is None else len(val)),
            "val_rows": 0 if val is None else len(val),
            "target_rows": len(target),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "mixed_precision": result.mixed_precision,
            "final_lambda": dann.last.get("lambda"),
            "final_domain_loss": dann.last.get("domain_loss"),
        }
        classifier = Classifier(encoder, head, label_map, strategy={"name": self.name, "kwargs": self.config()})
        return FitResult(classifier, info)
