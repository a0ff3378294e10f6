"""Domain adaptation by masked-language-model training of the encoder on unlabeled target text.

``dapt`` — domain-adaptive pretraining (Gururangan et al. 2020, "Don't Stop Pretraining", ACL):
continue MLM training of the encoder on the unlabeled target texts (optionally with the source
texts) for ``mlm_steps`` steps, then fine-tune on the labeled source exactly as ``finetune`` does
(the same freezing options, learning rates, loop and checkpoints).

``udalm`` — UDALM (Karouzos et al. 2021, NAACL): one fine-tuning run whose every step mixes the
source classification loss and the target MLM loss, ``lambda * L_cls + (1 - lambda) * L_mlm``
(``cls_weight`` is lambda). Optionally preceded by an MLM phase (``mlm_steps``), as in the paper,
where the mixed run starts from a target-pretrained model.

Both need a text encoder with a Hugging Face masked-LM family (``transformer``, ``sentence``).
A checkpoint folder with an MLM head (``BertForMaskedLM`` weights) brings it; sentence encoders
(e.g. all-MiniLM-L6-v2) have none, so one is initialised and tied to the input embeddings, and
the log says so. The MLM head is not part of the saved classifier: only the adapted encoder and
the classification head are. Target labels are never used (only ``target_unlabeled.texts``);
model selection reads held-out *source* accuracy.

Config::

    strategy:
      name: dapt
      head: linear
      mlm_steps: 300          # or mlm_epochs: 2 (passes over the MLM texts)
      mlm_lr: 5.0e-5
      mlm_batch_size: 16
      mlm_probability: 0.15   # BERT masking: of these 80% [MASK], 10% random, 10% unchanged
      mlm_texts: target       # or target+source
      mlm_head_warmup_steps: 0  # e.g. 100: a fresh head (sentence encoders) first learns alone
      max_target_rows: 2388
      max_train_rows: 2000    # ... and every other finetune setting
    training: {lr: 5.0e-5, epochs: 2, batch_size: 32, warmup_ratio: 0.1}

No torch import at module level: the strategy registry imports this module.
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

import numpy as np

from textransfer.classifier import Classifier
from textransfer.data.labeled import LabeledTexts
from textransfer.encoders.base import ENCODERS, Encoder, TrainableEncoder
from textransfer.heads.base import Head
from textransfer.strategies._checks import integer, number
from textransfer.strategies.base import (
    CapabilityError,
    FitContext,
    FitResult,
    register_strategy,
    require_target_texts,
)
from textransfer.strategies.finetune import (
    FinetuneStrategy,
    mark_trained,
    missing_trainable_members,
    trainable_encoder_names,
)
from textransfer.training.args import TrainingArgs

logger = logging.getLogger("textransfer.strategies")

MLM_TEXTS = ("target", "target+source")


def mlm_encoder_names() -> list[str]:
    """Registered encoders that can be MLM-trained: trainable, text, with a tokenizer."""
    return [n for n in trainable_encoder_names() if getattr(ENCODERS.get(n), "modality", "text") == "text"]


@register_strategy("dapt")
class DAPTStrategy(FinetuneStrategy):
    """MLM training of the encoder on unlabeled target text, then fine-tuning on the source.

    Args:
        mlm_steps: optimiser steps of the MLM phase (default 300 unless ``mlm_epochs`` is given).
        mlm_epochs: instead of ``mlm_steps``: passes over the MLM texts (may be fractional).
        mlm_lr: peak learning rate of the MLM phase (linear warmup, then linear decay to 0).
        mlm_head_lr: learning rate of the MLM head's own parameters (default ``mlm_lr``); a
            freshly initialised head may learn faster than the pretrained encoder.
        mlm_head_warmup_steps: steps that train a freshly initialised MLM head alone (encoder
            frozen, at ``mlm_head_lr``) before the encoder sees any MLM gradient, so that the
            encoder is not trained through a random head (default 0: none). Skipped, and logged,
            when the checkpoint brings its own head.
        mlm_warmup_ratio: warmup share of the MLM phase's steps.
        mlm_probability: share of tokens masked (BERT: 0.15; 80% [MASK], 10% random, 10% kept).
        mlm_batch_size: texts per MLM step.
        mlm_texts: ``target`` (the unlabeled target texts) or ``target+source`` (plus the source
            training texts, labels unused).
        max_target_rows: use at most this many unlabeled target texts (seeded sample).
        freeze_embeddings, freeze_bottom, gradual_unfreezing, layer_lr_decay, head_lr,
            val_fraction, max_train_rows: the fine-tuning phase, as in ``finetune``.

    Example:
        >>> clf = create_strategy("dapt", mlm_steps=200).fit(create_encoder("transformer"), create_head("linear"),
        ...                                                  movies, target_unlabeled=products.without_labels())  # doctest: +SKIP
    """

    needs_target_texts = True
    source_only = False  # FinetuneStrategy's, undone: MLM training reads the target texts
    #: the default number of MLM steps when neither ``mlm_steps`` nor ``mlm_epochs`` is given
    default_mlm_steps = 300
    # Declared for type checkers (set in __init__).
    mlm_steps: int | None
    mlm_epochs: float | None
    mlm_lr: float
    mlm_head_lr: float | None
    mlm_head_warmup_steps: int
    mlm_warmup_ratio: float
    mlm_probability: float
    mlm_batch_size: int
    mlm_texts: str
    max_target_rows: int | None

    def __init__(
        self,
        mlm_steps: int | None = None,
        mlm_epochs: float | None = None,
        mlm_lr: float = 5e-5,
        mlm_head_lr: float | None = None,
        mlm_warmup_ratio: float = 0.06,
        mlm_probability: float = 0.15,
        mlm_batch_size: int = 16,
        mlm_texts: str = "target",
        max_target_rows: int | None = None,
        freeze_embeddings: bool = False,
        freeze_bottom: int = 0,
        gradual_unfreezing: bool = False,
        layer_lr_decay: float = 1.0,
        head_lr: float | None = None,
        val_fraction: float = 0.1,
        max_train_rows: int | None = None,
        mlm_head_warmup_steps: int = 0,
    ) -> None:
        super().__init__(freeze_embeddings, freeze_bottom, gradual_unfreezing, layer_lr_decay, head_lr,
                         val_fraction, max_train_rows)
        name = self.name
        if mlm_steps is not None and mlm_epochs is not None:
            raise ValueError(f"{name}: give mlm_steps or mlm_epochs, not both (got {mlm_steps} and {mlm_epochs})")
        self.mlm_steps = integer(mlm_steps, "mlm_steps", name, minimum=self._min_mlm_steps(), allow_none=True)
        self.mlm_epochs = number(mlm_epochs, "mlm_epochs", name, allow_none=True)
        self.mlm_lr = number(mlm_lr, "mlm_lr", name)
        self.mlm_head_lr = number(mlm_head_lr, "mlm_head_lr", name, allow_none=True)
        self.mlm_head_warmup_steps = integer(mlm_head_warmup_steps, "mlm_head_warmup_steps", name, minimum=0)
        self.mlm_warmup_ratio = number(mlm_warmup_ratio, "mlm_warmup_ratio", name, high=1.0, low_closed=True,
                                       high_closed=False, noun="")
        self.mlm_probability = number(mlm_probability, "mlm_probability", name, high=1.0, high_closed=False,
                                      hint=" (BERT: 0.15)", noun="")
        self.mlm_batch_size = integer(mlm_batch_size, "mlm_batch_size", name)
        if mlm_texts not in MLM_TEXTS:
            raise ValueError(f"{name}: mlm_texts must be one of {', '.join(MLM_TEXTS)}, got {mlm_texts!r}")
        self.mlm_texts = mlm_texts
        self.max_target_rows = integer(max_target_rows, "max_target_rows", name, minimum=2, allow_none=True)

    @staticmethod
    def _min_mlm_steps() -> int:
        return 1

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "mlm_steps": self.mlm_steps, "mlm_epochs": self.mlm_epochs, "mlm_lr": self.mlm_lr,
            "mlm_head_lr": self.mlm_head_lr, "mlm_head_warmup_steps": self.mlm_head_warmup_steps,
            "mlm_warmup_ratio": self.mlm_warmup_ratio,
            "mlm_probability": self.mlm_probability, "mlm_batch_size": self.mlm_batch_size,
            "mlm_texts": self.mlm_texts, "max_target_rows": self.max_target_rows,
        }

    # -- checks ---------------------------------------------------------------------------------

    def check(self, encoder: Encoder, head: Head) -> None:
        """Raises :class:`CapabilityError` unless ``encoder`` is a trainable text encoder (then
        finetune's checks of the head)."""
        if getattr(encoder, "modality", "text") != "text" or missing_trainable_members(encoder):
            raise CapabilityError(
                f"{self.name} trains the encoder as a masked language model on target texts; encoder "
                f"{encoder.name!r} cannot (it is not a trainable text transformer with a tokenizer). "
                f"Encoders that can: {', '.join(mlm_encoder_names())}; or use strategy: frozen or coral"
            )
        super().check(encoder, head)

    def masked_lm(self, encoder: Encoder, seed: int | None = None) -> Any:
        """The MLM model over ``encoder``'s own backbone (see :func:`training.mlm.build_masked_lm`),
        its new head seeded with ``seed`` (default ``training.seed``)."""
        from textransfer.training.mlm import build_masked_lm

        try:
            return build_masked_lm(encoder, seed=self.training.seed if seed is None else seed)
        except TypeError as exc:  # no tokenizer / mask token / masked-LM class for this model
            raise CapabilityError(
                f"{self.name}: encoder {encoder.name!r} cannot be trained as a masked language model ({exc}). "
                f"Use a BERT-family model (e.g. all-MiniLM-L6-v2, all-mpnet-base-v2) with one of: "
                f"{', '.join(mlm_encoder_names())}"
            ) from None

    def target_texts(self, target_unlabeled: LabeledTexts | None, seed: int | None = None) -> list[str]:
        """The unlabeled target texts (at most ``max_target_rows``, sampled with ``seed``, default
        ``training.seed``); labels never read."""
        target_unlabeled = require_target_texts(self.name, target_unlabeled)
        texts = list(target_unlabeled.texts)  # texts only: target labels never enter this method
        if self.max_target_rows is not None and len(texts) > self.max_target_rows:
            rng = np.random.default_rng(self.training.seed if seed is None else seed)
            keep = np.sort(rng.choice(len(texts), self.max_target_rows, replace=False))
            texts = [texts[i] for i in keep]
        return texts

    # -- the MLM phase --------------------------------------------------------------------------

    def steps_for(self, n_texts: int) -> int:
        """MLM steps: ``mlm_steps``, or ``mlm_epochs`` passes over ``n_texts`` texts."""
        if self.mlm_steps is not None:
            return self.mlm_steps
        if self.mlm_epochs is not None:
            return max(1, math.ceil(self.mlm_epochs * n_texts / self.mlm_batch_size))
        return self.default_mlm_steps

    def mlm_phase(
        self, encoder: Encoder, mlm: Any, texts: list[str], steps: int, training: TrainingArgs | None = None
    ) -> dict[str, Any]:
        """Trains ``mlm`` (:meth:`masked_lm`: ``encoder``'s own backbone + an MLM head) in place
        as a masked LM on ``texts`` for ``steps`` steps (seed, weight decay, clipping, precision
        and progress from ``training``, default ``self.training``).

        Returns:
            ``{"steps", "texts", "head", "loss_first", "loss_last", "seconds"}`` (first and last
            are the mean MLM loss of the first and last tenth of the steps).
        """
        from textransfer.training.optim import param_groups

        fit_args = training or self.training
        for p in mlm.parameters():  # the whole encoder learns the target's language
            p.requires_grad_(True)
        head_ids = {id(p) for p in mlm.head_parameters()}
        body = param_groups(_Without(mlm, head_ids), self.mlm_lr, fit_args.weight_decay)
        head = param_groups(_Only(mlm, head_ids), self.mlm_head_lr or self.mlm_lr, 0.0)
        info = {"texts": len(texts), "head": mlm.head_source,
                **self._mlm_run(encoder, mlm, texts, steps, self.mlm_lr, body + head, fit_args)}
        mark_trained(encoder)  # save() writes the weights
        logger.info("%s: MLM phase %s", self.name, info)
        return info

    def warm_up_head(
        self, encoder: Encoder, mlm: Any, texts: list[str], training: TrainingArgs | None = None
    ) -> dict[str, Any] | None:
        """Trains a freshly initialised MLM head alone for ``mlm_head_warmup_steps`` steps on
        ``texts``, the encoder frozen (its ``requires_grad`` flags restored afterwards).

        Returns:
            ``None`` when ``mlm_head_warmup_steps`` is 0, ``{"skipped": why}`` when the head came
            from the checkpoint, else ``{"steps", "loss_first", "loss_last", "seconds", ...}``.
        """
        from textransfer.training.optim import param_groups

        steps = self.mlm_head_warmup_steps
        if steps == 0:
            return None
        if mlm.head_source != "initialised":
            logger.info("%s: the MLM head came from the checkpoint; no head warm-up", self.name)
            return {"skipped": "the checkpoint's own MLM head"}
        head_ids = {id(p) for p in mlm.head_parameters()}
        before = {id(p): p.requires_grad for p in mlm.parameters()}
        for p in mlm.parameters():
            p.requires_grad_(id(p) in head_ids)
        lr = self.mlm_head_lr or self.mlm_lr
        try:
            info = self._mlm_run(encoder, mlm, texts, steps, lr,
                                 param_groups(_Only(mlm, head_ids), lr, 0.0), training or self.training)
        finally:
            for p in mlm.parameters():
                p.requires_grad_(before[id(p)])
        logger.info("%s: MLM head warm-up (encoder frozen) %s", self.name, info)
        return info

    def _mlm_run(self, encoder: Encoder, mlm: Any, texts: list[str], steps: int, lr: float,
                 groups: list[dict[str, Any]], fit_args: TrainingArgs) -> dict[str, Any]:
        """``steps`` MLM steps on ``texts`` over the parameter ``groups``; the losses and time."""
        import time

        from textransfer import tracking
        from textransfer.training.loop import train as train_loop
        from textransfer.training.mlm import mlm_collator, mlm_loader, tokenize_texts

        seed = fit_args.seed
        rows = tokenize_texts(encoder, texts)
        loader = mlm_loader(rows, mlm_collator(encoder, self.mlm_probability, seed), self.mlm_batch_size, steps, seed)
        args = TrainingArgs(
            epochs=1, batch_size=self.mlm_batch_size, lr=lr, weight_decay=fit_args.weight_decay,
            warmup_ratio=self.mlm_warmup_ratio, max_grad_norm=fit_args.max_grad_norm,
            mixed_precision=fit_args.mixed_precision, patience=None, seed=seed, progress=fit_args.progress,
        )
        start = len(mlm.trace)
        t0 = time.perf_counter()
        # Its own record: the MLM run is not a classifier fit, so it stays out of the run's
        # training histories (its losses go to the fit info instead).
        with tracking.recording(None):
            train_loop(mlm, loader, None, args, optimizer_groups=groups)
        seconds = time.perf_counter() - t0
        losses = mlm.trace[start:]
        tenth = max(1, len(losses) // 10)
        return {
            "steps": steps, "seconds": round(seconds, 2), "seconds_per_step": round(seconds / max(steps, 1), 3),
            "loss_first": float(np.mean(losses[:tenth])) if losses else None,
            "loss_last": float(np.mean(losses[-tenth:])) if losses else None,
        }

    def mlm_corpus(self, train: LabeledTexts, target: list[str]) -> list[str]:
        """The texts of the MLM phase: the target texts, plus the source's with ``target+source``."""
        if self.mlm_texts == "target+source":
            return target + [t for t in train.texts if isinstance(t, str)]
        return target

    # -- fit --------------------------------------------------------------------------------------

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
        ctx = self.context(context)
        seed = ctx.training.seed
        self.check(encoder, head)
        target = self.target_texts(target_unlabeled, seed)
        self.label_map_for(train)  # a bad training set fails before minutes of MLM training
        texts = self.mlm_corpus(self.subsample(train, seed), target)
        mlm = self.masked_lm(encoder, seed)
        warmup = self.warm_up_head(encoder, mlm, texts, ctx.training)
        mlm_info = self.mlm_phase(encoder, mlm, texts, self.steps_for(len(texts)), ctx.training)
        result = super().fit_with_context(encoder, head, train, val=val, context=ctx)  # exactly finetune, adapted encoder
        result.info = {**result.info, "target_rows": len(target), "mlm": mlm_info, "mlm_head_warmup": warmup}
        return result


@register_strategy("udalm")
class UDALMStrategy(DAPTStrategy):
    """UDALM: fine-tuning with the mixed loss ``cls_weight * L_cls(source) + (1 - cls_weight) *
    L_mlm(target)`` in every step (Karouzos et al. 2021), after an optional MLM phase.

    Args:
        cls_weight: lambda, the classification loss's weight in (0, 1]; the MLM loss gets
            ``1 - lambda``.
        mlm_steps: steps of a plain MLM phase before the mixed run (default 0: none).
        mlm_batch_size: target texts per mixed step (default: ``training.batch_size``).
        mlm_head_lr: the MLM head's learning rate in the mixed run (default: ``head_lr``, else
            ``training.lr``) and in the MLM phase (default: ``mlm_lr``).
        mlm_lr, mlm_epochs, mlm_warmup_ratio, mlm_texts: the optional MLM phase, as in ``dapt``.
        mlm_head_warmup_steps: as in ``dapt``: a fresh head trained alone first (before the MLM
            phase, or before the mixed run when there is none).
        mlm_probability, max_target_rows: as in ``dapt``.
        freeze_embeddings, freeze_bottom, layer_lr_decay, head_lr, val_fraction, max_train_rows:
            as in ``finetune`` (no gradual unfreezing: the MLM loss trains all layers).
    """

    default_mlm_steps = 0
    cls_weight: float  # set in __init__
    _mixed_batch_size: int | None  # set in __init__

    def __init__(
        self,
        cls_weight: float = 0.5,
        mlm_steps: int | None = None,
        mlm_epochs: float | None = None,
        mlm_lr: float = 5e-5,
        mlm_head_lr: float | None = None,
        mlm_head_warmup_steps: int = 0,
        mlm_warmup_ratio: float = 0.06,
        mlm_probability: float = 0.15,
        mlm_batch_size: int | None = None,
        mlm_texts: str = "target",
        max_target_rows: int | None = None,
        freeze_embeddings: bool = False,
        freeze_bottom: int = 0,
        layer_lr_decay: float = 1.0,
        head_lr: float | None = None,
        val_fraction: float = 0.1,
        max_train_rows: int | None = None,
    ) -> None:
        super().__init__(mlm_steps, mlm_epochs, mlm_lr, mlm_head_lr, mlm_warmup_ratio, mlm_probability,
                         16 if mlm_batch_size is None else mlm_batch_size, mlm_texts, max_target_rows,
                         freeze_embeddings, freeze_bottom, False, layer_lr_decay, head_lr, val_fraction,
                         max_train_rows, mlm_head_warmup_steps)
        self._mixed_batch_size = None if mlm_batch_size is None else self.mlm_batch_size
        self.cls_weight = number(cls_weight, "cls_weight (lambda)", "udalm", high=1.0, noun="")

    @staticmethod
    def _min_mlm_steps() -> int:
        return 0

    def config(self) -> dict[str, Any]:
        cfg = {k: v for k, v in super().config().items() if k != "gradual_unfreezing"}
        return {**cfg, "cls_weight": self.cls_weight, "mlm_batch_size": self._mixed_batch_size}

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
        from torch.utils.data import DataLoader, Dataset

        from textransfer.training.batching import LengthGroupedBatchSampler, input_loader
        from textransfer.training.loop import train as train_loop
        from textransfer.training.mlm import MixedCollator, MixedLoss, mlm_collator, tokenize_texts
        from textransfer.training.optim import param_groups

        ctx = self.context(context)
        args, seed = ctx.training, ctx.training.seed
        self.check(encoder, head)
        target = self.target_texts(target_unlabeled, seed)
        label_map = self.label_map_for(train)
        train = self.subsample(train, seed)
        mlm = self.masked_lm(encoder, seed)  # one head for the MLM phase and the mixed run
        mlm_info = None
        corpus = self.mlm_corpus(train, target)
        warmup = self.warm_up_head(encoder, mlm, corpus, args)
        steps = self.steps_for(len(corpus))
        if steps > 0:
            mlm_info = self.mlm_phase(encoder, mlm, corpus, steps, args)
        train, val = self.split_validation(train, val, seed)
        y = label_map.encode(train.labels or [])
        model, plan = self.prepare(encoder, head, len(label_map), train.texts[: min(8, len(train))], args)
        mixed = MixedLoss(model, mlm, self.cls_weight)
        lengths = [len(t) if isinstance(t, str) else 0 for t in train.texts]
        sampler = LengthGroupedBatchSampler(lengths, args.batch_size, shuffle=True, seed=seed)
        collate = MixedCollator(cast(TrainableEncoder, encoder).collate, train.texts, y, tokenize_texts(encoder, target),
                                mlm_collator(encoder, self.mlm_probability, seed),
                                self._mixed_batch_size or args.batch_size, seed)
        # The row numbers, a list, serve as the map-style dataset the collator indexes with.
        loader: DataLoader[int] = DataLoader(cast("Dataset[int]", list(range(len(train)))), batch_sampler=sampler,
                                             collate_fn=collate)
        val_loader = None
        if val is not None and val.labels is not None:
            val_loader = input_loader(encoder, val.texts, label_map.encode(val.labels), args.batch_size, shuffle=False)
        groups = self.optimizer_groups(plan, head, args)
        head_ids = {id(p) for p in mlm.head_parameters()}
        groups += param_groups(_Only(mlm, head_ids), self.mlm_head_lr or self.head_lr or self.lr_of(args),
                               args.weight_decay)
        result = train_loop(mixed, loader, val_loader, args, optimizer_groups=groups,
                            checkpoint_dir=ctx.checkpoint_dir, resume=ctx.resume)
        plan.apply(None)
        mark_trained(encoder)  # save() writes the weights
        info = {
            "train_rows": len(train) + (0 if val is None else len(val)),
            "val_rows": 0 if val is None else len(val),
            "target_rows": len(target),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "mixed_precision": result.mixed_precision,
            "stopped_early": result.stopped_early,
            "resumed_from": result.resumed_from,
            "mlm": mlm_info,
            "mlm_head": mlm.head_source,
            "mlm_head_warmup": warmup,
            "final_cls_loss": mixed.last.get("cls_loss"),
            "final_mlm_loss": mixed.last.get("mlm_loss"),
        }
        classifier = Classifier(encoder, head, label_map, strategy={"name": self.name, "kwargs": self.config()})
        return FitResult(classifier, info)


class _Only:
    """``named_parameters`` of ``module`` restricted to the ids in ``keep`` (for param_groups)."""

    def __init__(self, module: Any, keep: set[int]) -> None:
        self.module, self.keep = module, keep

    def named_parameters(self) -> Any:
        return ((n, p) for n, p in self.module.named_parameters() if id(p) in self.keep)


class _Without(_Only):
    """``named_parameters`` of ``module`` except the ids in ``keep``."""

    def named_parameters(self) -> Any:
        return ((n, p) for n, p in self.module.named_parameters() if id(p) not in self.keep)
