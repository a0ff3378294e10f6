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
      max_target_rows: 2388
      max_train_rows: 2000    # ... and every other finetune setting
    training: {lr: 5.0e-5, epochs: 2, batch_size: 32, warmup_ratio: 0.1}

No torch import at module level: the strategy registry imports this module.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any, Literal, cast, overload

import numpy as np

from textransfer.classifier import Classifier
from textransfer.data.labeled import LabeledTexts
from textransfer.encoders.base import ENCODERS, Encoder, TrainableEncoder
from textransfer.heads.base import Head
from textransfer.strategies.base import CapabilityError, register_strategy, require_target_texts
from textransfer.strategies.finetune import FinetuneStrategy, mark_trained, trainable_encoder_names

logger = logging.getLogger("textransfer.strategies")

MLM_TEXTS = ("target", "target+source")


def mlm_encoder_names() -> list[str]:
    """Registered encoders that can be MLM-trained: trainable, text, with a tokenizer."""
    return [n for n in trainable_encoder_names() if getattr(ENCODERS.get(n), "modality", "text") == "text"]


@overload
def _positive_int(value: Any, name: str, strategy: str, allow_none: Literal[False] = False, minimum: int = 1) -> int: ...
@overload
def _positive_int(value: Any, name: str, strategy: str, allow_none: bool, minimum: int = 1) -> int | None: ...
def _positive_int(value: Any, name: str, strategy: str, allow_none: bool = False, minimum: int = 1) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        none = " (or null)" if allow_none else ""
        raise ValueError(f"{strategy}: {name} must be an integer >= {minimum}{none}, got {value!r}")
    return int(value)


@overload
def _positive_float(value: Any, name: str, strategy: str, allow_none: Literal[False] = False) -> float: ...
@overload
def _positive_float(value: Any, name: str, strategy: str, allow_none: bool) -> float | None: ...
def _positive_float(value: Any, name: str, strategy: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    not_real = isinstance(value, bool) or not isinstance(value, numbers.Real)
    if not_real or not value > 0:
        none = " (or null)" if allow_none else ""
        raise ValueError(f"{strategy}: {name} must be a number > 0{none}, got {value!r}")
    return float(value)


@register_strategy("dapt")
class DAPTStrategy(FinetuneStrategy):
    """MLM training of the encoder on unlabeled target text, then fine-tuning on the source.

    Args:
        mlm_steps: optimiser steps of the MLM phase (default 300 unless ``mlm_epochs`` is given).
        mlm_epochs: instead of ``mlm_steps``: passes over the MLM texts (may be fractional).
        mlm_lr: peak learning rate of the MLM phase (linear warmup, then linear decay to 0).
        mlm_head_lr: learning rate of the MLM head's own parameters (default ``mlm_lr``); a
            freshly initialised head may learn faster than the pretrained encoder.
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

    #: the default number of MLM steps when neither ``mlm_steps`` nor ``mlm_epochs`` is given
    default_mlm_steps = 300
    # Declared for type checkers (set in __init__).
    mlm_steps: int | None
    mlm_epochs: float | None
    mlm_lr: float
    mlm_head_lr: float | None
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
    ) -> None:
        super().__init__(freeze_embeddings, freeze_bottom, gradual_unfreezing, layer_lr_decay, head_lr,
                         val_fraction, max_train_rows)
        name = self.name
        if mlm_steps is not None and mlm_epochs is not None:
            raise ValueError(f"{name}: give mlm_steps or mlm_epochs, not both (got {mlm_steps} and {mlm_epochs})")
        self.mlm_steps = _positive_int(mlm_steps, "mlm_steps", name, allow_none=True, minimum=self._min_mlm_steps())
        self.mlm_epochs = _positive_float(mlm_epochs, "mlm_epochs", name, allow_none=True)
        self.mlm_lr = _positive_float(mlm_lr, "mlm_lr", name)
        self.mlm_head_lr = _positive_float(mlm_head_lr, "mlm_head_lr", name, allow_none=True)
        if isinstance(mlm_warmup_ratio, bool) or not isinstance(mlm_warmup_ratio, numbers.Real) \
                or not 0.0 <= mlm_warmup_ratio < 1.0:
            raise ValueError(f"{name}: mlm_warmup_ratio must be in [0, 1), got {mlm_warmup_ratio!r}")
        self.mlm_warmup_ratio = float(mlm_warmup_ratio)
        if isinstance(mlm_probability, bool) or not isinstance(mlm_probability, numbers.Real) \
                or not 0.0 < mlm_probability < 1.0:
            raise ValueError(f"{name}: mlm_probability must be in (0, 1) (BERT: 0.15), got {mlm_probability!r}")
        self.mlm_probability = float(mlm_probability)
        self.mlm_batch_size = _positive_int(mlm_batch_size, "mlm_batch_size", name)
        if mlm_texts not in MLM_TEXTS:
            raise ValueError(f"{name}: mlm_texts must be one of {', '.join(MLM_TEXTS)}, got {mlm_texts!r}")
        self.mlm_texts = mlm_texts
        self.max_target_rows = _positive_int(max_target_rows, "max_target_rows", name, allow_none=True, minimum=2)

    @staticmethod
    def _min_mlm_steps() -> int:
        return 1

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "mlm_steps": self.mlm_steps, "mlm_epochs": self.mlm_epochs, "mlm_lr": self.mlm_lr,
            "mlm_head_lr": self.mlm_head_lr, "mlm_warmup_ratio": self.mlm_warmup_ratio,
            "mlm_probability": self.mlm_probability, "mlm_batch_size": self.mlm_batch_size,
            "mlm_texts": self.mlm_texts, "max_target_rows": self.max_target_rows,
        }

    # -- checks ---------------------------------------------------------------------------------

    def check(self, encoder: Encoder, head: Head) -> None:
        """Raises :class:`CapabilityError` unless ``encoder`` is a trainable text encoder (then
        finetune's checks of the head)."""
        if getattr(encoder, "modality", "text") != "text" or not isinstance(encoder, TrainableEncoder):
            raise CapabilityError(
                f"{self.name} trains the encoder as a masked language model on target texts; encoder "
                f"{encoder.name!r} cannot (it is not a trainable text transformer with a tokenizer). "
                f"Encoders that can: {', '.join(mlm_encoder_names())}; or use strategy: frozen or coral"
            )
        super().check(encoder, head)

    def masked_lm(self, encoder: Encoder) -> Any:
        """The MLM model over ``encoder``'s own backbone (see :func:`training.mlm.build_masked_lm`)."""
        from textransfer.training.mlm import build_masked_lm

        try:
            return build_masked_lm(encoder, seed=self.training.seed)
        except TypeError as exc:  # no tokenizer / mask token / masked-LM class for this model
            raise CapabilityError(
                f"{self.name}: encoder {encoder.name!r} cannot be trained as a masked language model ({exc}). "
                f"Use a BERT-family model (e.g. all-MiniLM-L6-v2, all-mpnet-base-v2) with one of: "
                f"{', '.join(mlm_encoder_names())}"
            ) from None

    def target_texts(self, target_unlabeled: LabeledTexts | None) -> list[str]:
        """The unlabeled target texts (at most ``max_target_rows``, seeded); labels never read."""
        target_unlabeled = require_target_texts(self.name, target_unlabeled)
        texts = list(target_unlabeled.texts)  # texts only: target labels never enter this method
        if self.max_target_rows is not None and len(texts) > self.max_target_rows:
            keep = np.sort(np.random.default_rng(self.training.seed).choice(len(texts), self.max_target_rows, replace=False))
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

    def mlm_phase(self, encoder: Encoder, mlm: Any, texts: list[str], steps: int) -> dict[str, Any]:
        """Trains ``mlm`` (:meth:`masked_lm`: ``encoder``'s own backbone + an MLM head) in place
        as a masked LM on ``texts`` for ``steps`` steps.

        Returns:
            ``{"steps", "texts", "head", "loss_first", "loss_last", "seconds"}`` (first and last
            are the mean MLM loss of the first and last tenth of the steps).
        """
        import time

        from textransfer import tracking
        from textransfer.training.loop import TrainingArgs, param_groups
        from textransfer.training.loop import train as train_loop
        from textransfer.training.mlm import mlm_collator, mlm_loader, tokenize_texts

        seed = self.training.seed
        for p in mlm.parameters():  # the whole encoder learns the target's language
            p.requires_grad_(True)
        rows = tokenize_texts(encoder, texts)
        loader = mlm_loader(rows, mlm_collator(encoder, self.mlm_probability, seed), self.mlm_batch_size, steps, seed)
        args = TrainingArgs(
            epochs=1, batch_size=self.mlm_batch_size, lr=self.mlm_lr, weight_decay=self.training.weight_decay,
            warmup_ratio=self.mlm_warmup_ratio, max_grad_norm=self.training.max_grad_norm,
            mixed_precision=self.training.mixed_precision, patience=None, seed=seed, progress=self.training.progress,
        )
        head_ids = {id(p) for p in mlm.head_parameters()}
        body = param_groups(_Without(mlm, head_ids), self.mlm_lr, args.weight_decay)
        head = param_groups(_Only(mlm, head_ids), self.mlm_head_lr or self.mlm_lr, 0.0)
        t0 = time.perf_counter()
        # Its own record: the MLM run is not a classifier fit, so it stays out of the run's
        # training histories (its losses go to last_fit_info instead).
        with tracking.recording(None):
            train_loop(mlm, loader, None, args, optimizer_groups=body + head)
        seconds = time.perf_counter() - t0
        losses = mlm.trace
        mark_trained(encoder)  # save() writes the weights
        tenth = max(1, len(losses) // 10)
        info = {
            "steps": steps, "texts": len(texts), "head": mlm.head_source, "seconds": round(seconds, 2),
            "seconds_per_step": round(seconds / max(steps, 1), 3),
            "loss_first": float(np.mean(losses[:tenth])) if losses else None,
            "loss_last": float(np.mean(losses[-tenth:])) if losses else None,
        }
        logger.info("%s: MLM phase %s", self.name, info)
        return info

    def mlm_corpus(self, train: LabeledTexts, target: list[str]) -> list[str]:
        """The texts of the MLM phase: the target texts, plus the source's with ``target+source``."""
        if self.mlm_texts == "target+source":
            return target + [t for t in train.texts if isinstance(t, str)]
        return target

    # -- fit --------------------------------------------------------------------------------------

    def fit(
        self,
        encoder: Encoder,
        head: Head,
        train: LabeledTexts,
        val: LabeledTexts | None = None,
        target_unlabeled: LabeledTexts | None = None,
    ) -> Classifier:
        self.check(encoder, head)
        target = self.target_texts(target_unlabeled)
        self.label_map_for(train)  # a bad training set fails before minutes of MLM training
        texts = self.mlm_corpus(self.subsample(train), target)
        mlm_info = self.mlm_phase(encoder, self.masked_lm(encoder), texts, self.steps_for(len(texts)))
        clf = super().fit(encoder, head, train, val)  # exactly finetune, on the adapted encoder
        self.last_fit_info = {**self.last_fit_info, "target_rows": len(target), "mlm": mlm_info}
        return clf


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
                         max_train_rows)
        self._mixed_batch_size = None if mlm_batch_size is None else self.mlm_batch_size
        if isinstance(cls_weight, bool) or not isinstance(cls_weight, numbers.Real) or not 0.0 < cls_weight <= 1.0:
            raise ValueError(f"udalm: cls_weight (lambda) must be in (0, 1], got {cls_weight!r}")
        self.cls_weight = float(cls_weight)

    @staticmethod
    def _min_mlm_steps() -> int:
        return 0

    def config(self) -> dict[str, Any]:
        cfg = {k: v for k, v in super().config().items() if k != "gradual_unfreezing"}
        return {**cfg, "cls_weight": self.cls_weight, "mlm_batch_size": self._mixed_batch_size}

    def fit(
        self,
        encoder: Encoder,
        head: Head,
        train: LabeledTexts,
        val: LabeledTexts | None = None,
        target_unlabeled: LabeledTexts | None = None,
    ) -> Classifier:
        from torch.utils.data import DataLoader, Dataset

        from textransfer.training.batching import LengthGroupedBatchSampler, input_loader
        from textransfer.training.loop import param_groups
        from textransfer.training.loop import train as train_loop
        from textransfer.training.mlm import MixedCollator, MixedLoss, mlm_collator, tokenize_texts

        self.check(encoder, head)
        target = self.target_texts(target_unlabeled)
        label_map = self.label_map_for(train)
        args, seed = self.training, self.training.seed
        train = self.subsample(train)
        mlm = self.masked_lm(encoder)  # one head for the MLM phase and the mixed run
        mlm_info = None
        corpus = self.mlm_corpus(train, target)
        steps = self.steps_for(len(corpus))
        if steps > 0:
            mlm_info = self.mlm_phase(encoder, mlm, corpus, steps)
        train, val = self.split_validation(train, val)
        y = label_map.encode(train.labels or [])
        model, plan = self.prepare(encoder, head, len(label_map), train.texts[: min(8, len(train))])
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
        groups = self.optimizer_groups(plan, head)
        head_ids = {id(p) for p in mlm.head_parameters()}
        groups += param_groups(_Only(mlm, head_ids), self.mlm_head_lr or self.head_lr or self.lr, args.weight_decay)
        result = train_loop(mixed, loader, val_loader, args, optimizer_groups=groups,
                            checkpoint_dir=self.checkpoint_dir, resume=self.resume)
        plan.apply(None)
        mark_trained(encoder)  # save() writes the weights
        self.last_fit_info = {
            "train_rows": len(train) + (0 if val is None else len(val)),
            "val_rows": 0 if val is None else len(val),
            "target_rows": len(target),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "stopped_early": result.stopped_early,
            "resumed_from": result.resumed_from,
            "mlm": mlm_info,
            "mlm_head": mlm.head_source,
            "final_cls_loss": mixed.last.get("cls_loss"),
            "final_mlm_loss": mixed.last.get("mlm_loss"),
        }
        return Classifier(encoder, head, label_map, strategy={"name": self.name, "kwargs": self.config()})


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
