"""Self-training: adapt to a target domain by pseudo-labelling its unlabeled texts.

Round 0 trains the base strategy (``frozen``, ``finetune`` or ``dapt``) on the labeled source. Each later
round predicts the unlabeled target texts, keeps a confident, class-balanced part of them as
pseudo-labels and trains again on source + pseudo-labeled target. Target labels are never read:
the strategy only takes ``target_unlabeled.without_labels()``.

What guards against the failure of naive self-training (frozen MiniLM + logreg, 3 rounds, top
half by confidence: 0.788 -> 0.758 on movies -> products):

- **Class balance** (class-balanced self-training, Zou et al. ECCV 2018, "CBST"): each class gets
  its own threshold. CBST keeps the top ``p`` of the rows *predicted* as each class, so the
  pseudo-label mix follows the model's own predicted mix, which is what a shifted source model
  gets wrong first (e.g. calling most product reviews positive); errors then feed on
  themselves. The default here, ``balance: source_prior``, fixes the pseudo-label mix to the
  source class proportions instead: source + pseudo-labels then have exactly the source prior,
  so pseudo-labels cannot move the head's class bias; for a balanced source it is an equal count
  per class. When a class has too few candidates every class takes proportionally fewer (the
  mix stays exact). ``balance: predicted`` is CBST's rule; ``equal`` a uniform prior.
  ``balance: estimated`` follows the *target's* class mix, estimated without target labels by
  black-box shift estimation (BBSE, Lipton et al. ICML 2018, "Detecting and Correcting for Label
  Shift with Black Box Predictors"): the current model's confusion matrix on the source
  validation rows, ``C[i, j] = P(predicted i, true j)``, and its predicted mix on the target,
  ``mu``, give the class weights ``w = C^-1 mu`` and the target prior ``w * source_prior``
  (clipped so that no class falls below 5%), estimated once from the source-only model and
  logged (``estimated_prior``). BBSE assumes pure label shift (the texts of each class look the
  same in both domains). Sentiment domains break that assumption: on the six packaged pairs
  (``configs/crossdomain_self_train_pairs.yaml``, frozen MiniLM, seeds 0-2) the estimate missed
  the true positive share by 10-25 points (movies -> products 0.37-0.44 against 0.59; products
  -> editorials 0.15-0.21 against 0.40), and the run lost 0.4-2.0 points against the
  source-only model on five pairs (+0.6 on one), where ``source_prior`` lost more than a point on
  one pair only. So it is not the default.
- **Curriculum** (CBST's self-paced schedule): the kept fraction grows per round, from the most
  confident rows first. CBST starts at 20% and adds 5% per round up to 50% over many rounds; with
  the 2-3 rounds a CPU affords the default goes from 0.2 to 0.5 in equal steps (0.2, 0.35, 0.5).
- **Calibration:** confidences are temperature-scaled (Guo et al. 2017) on a held-out *source*
  validation split, refitted for each round's model, before the ``min_confidence`` floor
  (default 0.8: a row kept must be one the model would get right 4 times in 5 on source data).
- **Stopping without target labels:** stop when the pseudo-label set changes by less than
  ``min_change`` (Jaccard distance of the (row, label) sets; with a growing schedule this can only
  fire once the schedule has levelled off), when no row passes the thresholds, or when
  source-validation accuracy falls more than ``val_tolerance`` below the source-only model's;
  the last case returns the previous round's model.

``base: finetune`` continues from the current weights in later rounds (encoder and head; a fresh
optimiser and schedule per round) instead of restarting from the pretrained checkpoint: a round
costs one more ``training.epochs`` pass over source + pseudo-labels, not a full restart. Round 0 is
exactly the ``finetune`` twin (same subsample, same validation split, same seed), so a caller that
has trained that twin hands it over (``FitContext.base_model``; a cross-domain run does when the
settings match) and round 0 starts from a copy instead of training again. ``base: dapt`` is the
same with round 0 a ``dapt`` fit: masked-language-model training on the unlabeled target texts,
then that fine-tuning (its ``mlm_*`` options are passed through); later rounds continue from the
adapted weights exactly as over ``finetune``, and a cross-domain run hands over a ``dapt`` row
of the same pair and settings. Self-training
writes no epoch checkpoints and cannot ``--resume``. ``base: frozen`` encodes every split once
(through the feature cache) and refits a fresh head each round. A fittable encoder (TF-IDF) is
fitted on the source train texts *and* the target texts, so that target-only words get features
the pseudo-labels can teach.

Config::

    strategy: {name: self_train, base: frozen, head: logreg, rounds: 3, keep_fraction: [0.2, 0.35, 0.5]}
    strategy: {name: self_train, base: finetune, head: linear, rounds: 2, max_train_rows: 2000, head_lr: 1.0e-3}
    strategy: {name: self_train, base: dapt, head: linear, rounds: 2, mlm_steps: 400, mlm_batch_size: 128}
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from textransfer.classifier import Classifier
from textransfer.data.labeled import LabeledTexts, LabelMap
from textransfer.encoders.base import Encoder, FittableEncoder, TrainableEncoder
from textransfer.evaluation.label_free import fit_temperature, predicted_mix, temperature_scale
from textransfer.heads.base import ArrayHead, Head, TorchHead
from textransfer.strategies._checks import integer, number
from textransfer.strategies.base import (
    FitContext,
    FitResult,
    Strategy,
    register_strategy,
    require_target_texts,
)
from textransfer.strategies.finetune import FinetuneStrategy
from textransfer.strategies.frozen import FrozenStrategy, fit_torch_head_on_arrays

logger = logging.getLogger("textransfer.strategies")

Balance = Literal["source_prior", "equal", "predicted", "estimated"]
_BALANCES = ("source_prior", "equal", "predicted", "estimated")
_MIN_CLASS_SHARE = 0.05  # the smallest share of a class in an estimated prior
_FINETUNE_ONLY = ("freeze_embeddings", "freeze_bottom", "gradual_unfreezing", "layer_lr_decay", "head_lr")
# dapt's options of its MLM phase (``base: dapt`` only; max_target_rows is self-training's own and
# is passed to the dapt base too, so that both sample the same target texts).
_DAPT_ONLY = ("mlm_steps", "mlm_epochs", "mlm_lr", "mlm_head_lr", "mlm_head_warmup_steps", "mlm_warmup_ratio",
              "mlm_probability", "mlm_batch_size", "mlm_texts")
_BASES = ("frozen", "finetune", "dapt")


# -- calibration and selection (pure numpy) -----------------------------------------------------


@dataclass
class PseudoLabels:
    """Rows chosen for pseudo-labels: ``indices`` into the target rows, their class ``labels``
    (ids), their calibrated ``confidence`` and each class's ``thresholds`` (lowest kept
    confidence; None when the class kept none)."""

    indices: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    thresholds: list[float | None]

    def pairs(self) -> set[tuple[int, int]]:
        return set(zip(self.indices.tolist(), self.labels.tolist(), strict=True))


def estimate_target_prior(proba_val: np.ndarray, y_val: np.ndarray, proba_target: np.ndarray,
                          min_share: float = _MIN_CLASS_SHARE) -> np.ndarray:
    """The target's class proportions, estimated without target labels (BBSE, Lipton et al. 2018).

    Args:
        proba_val: ``(n, k)`` the model's probabilities on labeled source validation rows.
        y_val: ``(n,)`` their label indices.
        proba_target: ``(m, k)`` its probabilities on the unlabeled target rows.
        min_share: the least share any class gets (then renormalised): a class the estimate
            drives to 0 would get no pseudo-labels at all.

    Returns:
        ``(k,)`` proportions summing to 1.

    Example:
        >>> val = np.array([[0.9, 0.1]] * 45 + [[0.1, 0.9]] * 5 + [[0.1, 0.9]] * 50)
        >>> y = np.array([0] * 50 + [1] * 50)  # 10% of class 0 is called class 1
        >>> tgt = np.array([[0.9, 0.1]] * 27 + [[0.1, 0.9]] * 73)  # 30% class 0: 27 + 3 wrong
        >>> estimate_target_prior(val, y, tgt).round(2).tolist()
        [0.3, 0.7]
    """
    k = proba_val.shape[1]
    y_val = np.asarray(y_val)
    joint = np.zeros((k, k))
    np.add.at(joint, (proba_val.argmax(axis=1), y_val), 1.0)
    joint /= max(len(y_val), 1)
    source_prior = joint.sum(axis=0)
    mu = predicted_mix(proba_target)
    weights = np.linalg.lstsq(joint, mu, rcond=None)[0]  # least squares: C may be near-singular
    prior = np.clip(weights * source_prior, 0.0, None)
    if prior.sum() <= 0:  # nothing usable (a model that predicts one class): the predicted mix
        prior = mu.astype(np.float64)
    prior = prior / prior.sum()
    prior = np.maximum(prior, min_share)
    return prior / prior.sum()


def select_pseudo_labels(
    proba: np.ndarray, keep_fraction: float, prior: np.ndarray | None, min_confidence: float = 0.0
) -> PseudoLabels:
    """Confident, class-balanced pseudo-labels: the most confident rows predicted as each class.

    Args:
        proba: ``(n, k)`` calibrated class probabilities of the target rows.
        keep_fraction: share of the ``n`` rows to keep in all.
        prior: ``(k,)`` class proportions of the kept set (e.g. the source prior); None keeps
            ``keep_fraction`` of the rows predicted as each class (CBST's rule).
        min_confidence: rows below this calibrated confidence are never kept.

    Returns:
        The kept rows. With a ``prior``, a class with fewer candidates than its share scales every
        class down, so that the kept counts follow ``prior`` (up to rounding).
    """
    n, k = proba.shape
    pred, conf = proba.argmax(axis=1), proba.max(axis=1)
    # Each class's candidates, most confident first (ties: row order, for repeatable runs).
    cands = [np.flatnonzero((pred == c) & (conf >= min_confidence)) for c in range(k)]
    cands = [idx[np.argsort(-conf[idx], kind="stable")] for idx in cands]
    if prior is None:
        quota = [int(keep_fraction * np.sum(pred == c)) for c in range(k)]
    else:
        want = keep_fraction * n * np.asarray(prior, dtype=np.float64)
        scale = min([1.0] + [len(cands[c]) / want[c] for c in range(k) if want[c] > 0])
        quota = [int(math.floor(want[c] * scale + 1e-9)) for c in range(k)]
    kept = [cands[c][: quota[c]] for c in range(k)]
    indices = np.concatenate(kept).astype(int) if kept else np.zeros(0, dtype=int)
    labels = np.concatenate([np.full(len(kept[c]), c) for c in range(k)]).astype(int)
    thresholds = [float(conf[kept[c][-1]]) if len(kept[c]) else None for c in range(k)]
    return PseudoLabels(indices, labels, conf[indices], thresholds)


def jaccard_change(a: PseudoLabels | None, b: PseudoLabels) -> float | None:
    """Jaccard distance of two pseudo-label sets as (row, label) pairs; None without ``a``."""
    if a is None:
        return None
    pa, pb = a.pairs(), b.pairs()
    union = pa | pb
    return 1.0 - len(pa & pb) / len(union) if union else 0.0


@dataclass
class SourceRows:
    """The source rows of a fit: ``given`` (what ``fit`` got), the ``train`` rows trained on and
    the ``val`` rows held out (calibration, stopping, early stopping); ``train_idx`` /
    ``val_idx`` index ``given`` (``val_idx`` is None when ``val`` was passed separately)."""

    given: LabeledTexts
    train_idx: np.ndarray
    val: LabeledTexts
    val_idx: np.ndarray | None

    @property
    def train(self) -> LabeledTexts:
        return self.given.subset(self.train_idx)


# -- the two bases: what a round needs from each ------------------------------------------------


class _FrozenRounds:
    """Frozen features (encoded once, through the cache) and a fresh head fitted per round."""

    base_info: dict[str, Any] = {}  # what the base's own fit reported (it has none here)

    def __init__(self, base: FrozenStrategy, encoder: Encoder, head: Head, source: SourceRows,
                 target: LabeledTexts, context: FitContext) -> None:
        base.check(encoder, head)
        self.base, self.encoder, self.head, self.context = base, encoder, head, context
        if isinstance(encoder, FittableEncoder):  # target words get features too (see module doc)
            encoder.fit(list(source.train.texts) + list(target.texts))
        # The rows given to fit() are encoded as a whole (what `crossdomain` cached ahead), then indexed.
        x_all = np.asarray(base.features(encoder, source.given, context))
        self.x_train = x_all[source.train_idx]
        self.x_val = (x_all[source.val_idx] if source.val_idx is not None
                      else np.asarray(base.features(encoder, source.val, context)))
        self.x_target = np.asarray(base.features(encoder, target, context))

    def fit(self, y: np.ndarray, y_val: np.ndarray, k: int, pseudo: PseudoLabels | None) -> None:
        x = self.x_train
        if pseudo is not None:
            x, y = np.vstack([x, self.x_target[pseudo.indices]]), np.concatenate([y, pseudo.labels])
        self.head.build(x.shape[1], k)
        if isinstance(self.head, ArrayHead):
            self.head.fit(x, y, num_classes=k)
        else:  # base.check in __init__: a head that is not an ArrayHead is a TorchHead
            fit_torch_head_on_arrays(cast(TorchHead, self.head), x, y, self.x_val, y_val, self.context.training)

    def proba_val(self) -> np.ndarray:
        return self.head.predict_proba(self.x_val)

    def proba_target(self) -> np.ndarray:
        return self.head.predict_proba(self.x_target)

    def snapshot(self) -> Any:
        return copy.deepcopy(self.head.__dict__)

    def restore(self, state: Any) -> None:
        self.head.__dict__.clear()
        self.head.__dict__.update(copy.deepcopy(state))


class _FinetuneRounds:
    """Round 0 is the base's fit (``finetune``, or ``dapt``: MLM on the target texts, then that
    fine-tuning); later rounds continue training the same weights."""

    base_info: dict[str, Any] = {}  # round 0's fit info (set by fit)

    def __init__(self, base: FinetuneStrategy, encoder: Encoder, head: Head, source: SourceRows,
                 target: LabeledTexts, context: FitContext, started: bool = False,
                 round_epochs: int | None = None) -> None:
        base.check(encoder, head)
        self.base, self.encoder, self.head, self.context = base, encoder, head, context
        self.round_epochs = round_epochs  # epochs of a pseudo-labelling round (None: training.epochs)
        self.train, self.val, self.target = source.train, source.val, target
        self.round = 0
        self.last_epochs: int | None = None
        self.started = started  # encoder and head are copies of the twin's trained ones

    def fit(self, y: np.ndarray, y_val: np.ndarray, k: int, pseudo: PseudoLabels | None) -> None:
        if pseudo is None:  # round 0: the finetune twin itself (val given: no second split)
            if self.started:
                self.base_info = {}
                return
            # dapt reads the (already sampled) target texts for its MLM phase; finetune ignores them
            self.base_info = self.base.fit_with_context(self.encoder, self.head, self.train, val=self.val,
                                                        target_unlabeled=self.target, context=self.context).info
            return
        from textransfer.training.batching import input_loader
        from textransfer.training.loop import train as train_loop

        self.round += 1
        texts = list(self.train.texts) + [self.target.texts[i] for i in pseudo.indices]
        labels = np.concatenate([y, pseudo.labels])
        head_module = self._modules()[1]
        head_state = {n: t.detach().clone() for n, t in head_module.state_dict().items()}
        # prepare() rebuilds the head and the freeze plan; the head's trained weights go back in.
        args = self.context.training
        if self.round_epochs is not None:  # a round's own length; its schedule spans just these epochs
            args = dataclasses.replace(args, epochs=self.round_epochs)
        model, plan = self.base.prepare(self.encoder, self.head, k, texts[: min(8, len(texts))], args)
        self._modules()[1].load_state_dict(head_state)
        loader = input_loader(self.encoder, texts, labels, args.batch_size, shuffle=True, seed=args.seed + self.round)
        val_loader = input_loader(self.encoder, self.val.texts, y_val, args.batch_size, shuffle=False)
        result = train_loop(model, loader, val_loader, args, optimizer_groups=self.base.optimizer_groups(plan, self.head, args))
        self.last_epochs = len(result.history)  # epochs this round trained (early stopping can cut them)
        self._modules()[0].eval()

    def _modules(self) -> tuple[Any, Any]:
        """The encoder's and the head's ``nn.Module`` (``base.check`` in ``__init__`` passed)."""
        return cast(TrainableEncoder, self.encoder).module, cast(TorchHead, self.head).module

    def _proba(self, texts: Sequence[Any]) -> np.ndarray:
        # Straight through the current weights: a fine-tuned encoder's features are never cached.
        return self.head.predict_proba(self.encoder.encode(list(texts), batch_size=self.context.batch_size))

    def proba_val(self) -> np.ndarray:
        return self._proba(self.val.texts)

    def proba_target(self) -> np.ndarray:
        return self._proba(self.target.texts)

    def snapshot(self) -> Any:
        modules = self._modules()
        return [{n: t.detach().clone() for n, t in m.state_dict().items()} for m in modules]

    def restore(self, state: Any) -> None:
        encoder_module, head_module = self._modules()
        encoder_module.load_state_dict(state[0])
        head_module.load_state_dict(state[1])


# -- the strategy -------------------------------------------------------------------------------


def _fraction(name: str, value: Any, low_open: bool = True) -> float:
    # (0, 1] for a share kept, [0, 1) for a threshold
    return number(value, name, "self_train", high=1.0, low_closed=not low_open, high_closed=low_open)


@register_strategy("self_train")
class SelfTrainStrategy(Strategy):
    """Self-training on unlabeled target texts over a ``frozen``, ``finetune`` or ``dapt`` base.

    Args:
        base: ``frozen`` (frozen features, any head), ``finetune`` (encoder trained, torch head)
            or ``dapt`` (``finetune`` after masked-language-model training on the target texts).
        rounds: pseudo-labelling rounds after the source-only fit (1-20).
        keep_fraction: share of the target rows kept as pseudo-labels per round: one number, or
            a schedule (at most one per round, non-decreasing; the last repeats). Default: 0.2
            to 0.5 in equal steps over ``rounds`` (0.2, 0.35, 0.5 for 3 rounds).
        balance: class mix of the pseudo-labels: ``source_prior`` (default), ``equal``,
            ``predicted`` (CBST: the same share of each predicted class) or ``estimated`` (the
            target's mix, estimated once from the source-only model, without target labels, by BBSE).
        min_confidence: calibrated confidence a pseudo-label needs (0 <= x < 1).
        min_change: stop when the pseudo-label set changes less than this (Jaccard distance).
        val_tolerance: stop, keeping the previous round's model, when source-validation accuracy
            falls more than this below round 0's.
        val_fraction: share of the source train rows held out for calibration, stopping and
            the base's early stopping (0 < x <= 0.5) when ``fit`` gets no ``val``.
        max_train_rows: train on a seeded, stratified subsample of this many source rows.
        max_target_rows: pseudo-label at most this many target texts (seeded sample).
        round_epochs: epochs of each pseudo-labelling round (``base: finetune`` or ``dapt``);
            None (default): ``training.epochs``, as round 0. Each round continues from the
            previous round's weights, so fewer epochs per round cut the cost of self-training
            (the rounds are most of it) without changing round 0, the twin's fit.
        freeze_embeddings, freeze_bottom, gradual_unfreezing, layer_lr_decay, head_lr: passed to
            ``finetune`` (``base: finetune`` or ``dapt``; gradual unfreezing applies to round 0).
        mlm_steps, mlm_epochs, mlm_lr, mlm_head_lr, mlm_head_warmup_steps, mlm_warmup_ratio,
            mlm_probability, mlm_batch_size, mlm_texts: passed to ``dapt`` (``base: dapt`` only).

    Example:
        >>> st = create_strategy("self_train", base="frozen", rounds=2)  # doctest: +SKIP
        >>> clf = st.fit(enc, create_head("logreg"), movies, target_unlabeled=products.without_labels())  # doctest: +SKIP
        >>> st.last_fit_info["stopped"]  # or st.fit_with_context(...).info  # doctest: +SKIP
    """

    needs_target_texts = True
    # Declared for type checkers (set in __init__).
    base_name: str
    rounds: int
    keep_fraction: list[float]
    balance: str
    min_confidence: float
    min_change: float
    val_tolerance: float
    val_fraction: float
    max_train_rows: int | None
    max_target_rows: int | None
    round_epochs: int | None
    base_kwargs: dict[str, Any]

    def __init__(
        self,
        base: Literal["frozen", "finetune", "dapt"] = "frozen",
        rounds: int = 3,
        keep_fraction: float | Sequence[float] | None = None,
        balance: Balance = "source_prior",
        min_confidence: float = 0.8,
        min_change: float = 0.05,
        val_tolerance: float = 0.02,
        val_fraction: float = 0.1,
        max_train_rows: int | None = None,
        max_target_rows: int | None = None,
        round_epochs: int | None = None,
        freeze_embeddings: bool | None = None,
        freeze_bottom: int | None = None,
        gradual_unfreezing: bool | None = None,
        layer_lr_decay: float | None = None,
        head_lr: float | None = None,
        mlm_steps: int | None = None,
        mlm_epochs: float | None = None,
        mlm_lr: float | None = None,
        mlm_head_lr: float | None = None,
        mlm_head_warmup_steps: int | None = None,
        mlm_warmup_ratio: float | None = None,
        mlm_probability: float | None = None,
        mlm_batch_size: int | None = None,
        mlm_texts: str | None = None,
    ) -> None:
        super().__init__()
        if base not in _BASES:
            raise ValueError(f"self_train: base must be one of {', '.join(_BASES)}, got {base!r}")
        rounds = integer(rounds, "rounds", "self_train", minimum=1, maximum=20)
        if keep_fraction is None:  # CBST's range, 20% -> 50%, spread over the rounds run here
            keep_fraction = [round(float(p), 4) for p in np.linspace(0.2, 0.5, int(rounds))]
        schedule = [keep_fraction] if isinstance(keep_fraction, numbers.Real) else list(cast(Sequence[float], keep_fraction))
        self.keep_fraction = [_fraction("keep_fraction", p) for p in schedule]
        if not self.keep_fraction or len(self.keep_fraction) > rounds or np.any(np.diff(self.keep_fraction) < 0):
            raise ValueError(
                f"self_train: keep_fraction must be one number or a non-decreasing list of at most rounds={rounds} "
                f"numbers (e.g. [0.2, 0.35, 0.5]), got {keep_fraction!r}"
            )
        if balance not in _BALANCES:
            raise ValueError(f"self_train: balance must be one of {', '.join(_BALANCES)}, got {balance!r}")
        self.min_confidence = _fraction("min_confidence", min_confidence, low_open=False)
        self.min_change = _fraction("min_change", min_change, low_open=False)
        val_tolerance = number(val_tolerance, "val_tolerance", "self_train", high=1.0, low_closed=True)
        val_fraction = number(val_fraction, "val_fraction", "self_train", high=0.5, noun="", hint=(
            " (a source validation split calibrates the confidences and drives the stopping rule)"))
        for key, value in (("max_train_rows", max_train_rows), ("max_target_rows", max_target_rows)):
            integer(value, key, "self_train", minimum=2, allow_none=True, none_means="all rows")
        round_epochs = integer(round_epochs, "round_epochs", "self_train", minimum=1, allow_none=True,
                               none_means="training.epochs")
        passed: dict[str, Any] = {k: v for k, v in zip(_FINETUNE_ONLY, (freeze_embeddings, freeze_bottom, gradual_unfreezing,
                                                           layer_lr_decay, head_lr), strict=True) if v is not None}
        if base == "frozen" and (passed or round_epochs is not None):
            raise ValueError(f"self_train: {next(iter(passed), 'round_epochs')} applies to base: finetune or dapt only "
                             "(base is frozen)")
        mlm: dict[str, Any] = {k: v for k, v in zip(_DAPT_ONLY, (mlm_steps, mlm_epochs, mlm_lr, mlm_head_lr,
                                                                mlm_head_warmup_steps, mlm_warmup_ratio, mlm_probability,
                                                                mlm_batch_size, mlm_texts), strict=True) if v is not None}
        if base != "dapt" and mlm:
            raise ValueError(f"self_train: {next(iter(mlm))} applies to base: dapt only (base is {base}); "
                             "set base: dapt for masked-language-model training on the target texts first")
        self.base_name, self.rounds, self.balance = base, int(rounds), balance
        self.val_tolerance, self.val_fraction = float(val_tolerance), float(val_fraction)
        self.max_train_rows, self.max_target_rows = max_train_rows, max_target_rows
        self.round_epochs = round_epochs
        self.base_kwargs = {**passed, **mlm}  # the base's own options, as given
        # The base does the training; FinetuneStrategy (and dapt) check their own options' ranges here.
        self.base: FrozenStrategy | FinetuneStrategy
        if base == "dapt":
            from textransfer.strategies.mlm import DAPTStrategy

            self.base = DAPTStrategy(**passed, **mlm, val_fraction=self.val_fraction, max_target_rows=max_target_rows)
        elif base == "finetune":
            self.base = FinetuneStrategy(**passed, val_fraction=self.val_fraction)
        else:
            self.base = FrozenStrategy(val_fraction=self.val_fraction)
        # Answered per instance, after the base: the experiments fill the feature cache ahead
        # (and share the encoder) for a frozen base; a finetune base trains the encoder.
        self.reads_frozen_features = self.base.reads_frozen_features
        self.trains_encoder = self.base.trains_encoder

    def config(self) -> dict[str, Any]:
        return {
            "base": self.base_name, "rounds": self.rounds, "keep_fraction": list(self.keep_fraction),
            "balance": self.balance, "min_confidence": self.min_confidence, "min_change": self.min_change,
            "val_tolerance": self.val_tolerance, "val_fraction": self.val_fraction,
            "max_train_rows": self.max_train_rows, "max_target_rows": self.max_target_rows,
            **({} if self.round_epochs is None else {"round_epochs": self.round_epochs}), **self.base_kwargs,
        }

    def base_fit(self) -> tuple[str, dict[str, Any]] | None:
        """Over ``finetune`` (``dapt``), round 0 is a ``finetune`` (``dapt``) fit with these
        settings (the subsample, validation split and target sample are made the same way); over
        ``frozen`` None (round 0 is one head fit on cached features: nothing worth handing over)."""
        if self.base_name == "frozen":
            return None
        return self.base_name, {**self.base.config(), "max_train_rows": self.max_train_rows}

    def check(self, encoder: Encoder, head: Head) -> None:
        """The base's checks (``frozen``: a head fitted on arrays or a torch head; ``finetune``
        and ``dapt``: a trainable encoder and a torch head)."""
        self.base.check(encoder, head)

    def fraction_at(self, round_: int) -> float:
        """The kept share of target rows in round ``round_`` (1-based)."""
        return self.keep_fraction[min(round_, len(self.keep_fraction)) - 1]

    def _target(self, target_unlabeled: LabeledTexts | None, seed: int) -> LabeledTexts:
        target_unlabeled = require_target_texts(self.name, target_unlabeled)
        target = target_unlabeled.without_labels()  # texts only: target labels never go further
        if self.max_target_rows is not None and len(target) > self.max_target_rows:
            rng = np.random.default_rng(seed)
            target = target.subset(np.sort(rng.choice(len(target), self.max_target_rows, replace=False)))
        return target

    def _source_split(self, train: LabeledTexts, val: LabeledTexts | None, seed: int) -> SourceRows:
        """Source train and validation rows: ``val`` when labeled, else the split finetune makes
        (the same subsample and the same stratified split, so round 0 is the finetune twin)."""
        from textransfer.data.splits import stratified_split, stratified_subsample

        # Splitting row numbers with the labels gives the rows stratified_split(train) gives.
        rows = LabeledTexts(list(range(len(train))), train.labels, domain=train.domain)
        if self.max_train_rows is not None and len(train) > self.max_train_rows:
            rows = stratified_subsample(rows, int(self.max_train_rows), seed=seed)
        if val is not None and val.labels is not None and len(val) > 0:
            return SourceRows(train, np.asarray(rows.texts, dtype=int), val, None)
        kept, held = stratified_split(rows, self.val_fraction, seed=seed)
        held_idx = np.asarray(held.texts, dtype=int)
        return SourceRows(train, np.asarray(kept.texts, dtype=int), train.subset(held_idx), held_idx)

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
        # The base trains with this fit's settings; self-training writes no epoch checkpoints.
        ctx = dataclasses.replace(self.context(context), checkpoint_dir=None, resume=False)
        seed = ctx.training.seed
        target = self._target(target_unlabeled, seed)
        label_map = self.label_map_for(train)
        source = self._source_split(train, val, seed)
        y, y_val = label_map.encode(source.train.labels or []), label_map.encode(source.val.labels or [])
        k = len(label_map)
        started = self._start(ctx.base_model, source, label_map)
        if started is not None:
            encoder, head = started
        prior = {"source_prior": np.bincount(y, minlength=k) / len(y), "equal": np.full(k, 1.0 / k)}.get(self.balance)
        learner: _FrozenRounds | _FinetuneRounds
        if self.base_name != "frozen":  # then __init__ made self.base a FinetuneStrategy (or dapt)
            learner = _FinetuneRounds(cast(FinetuneStrategy, self.base), encoder, head, source, target, ctx,
                                      started=started is not None, round_epochs=self.round_epochs)
        else:
            learner = _FrozenRounds(cast(FrozenStrategy, self.base), encoder, head, source, target, ctx)

        learner.fit(y, y_val, k, None)
        p_val = learner.proba_val()  # the current model's, for accuracy now and calibration next
        acc0 = float(np.mean(p_val.argmax(axis=1) == y_val))
        log: list[dict[str, Any]] = [{"round": 0, "source_val_accuracy": round(acc0, 4)}]
        base_info = dict(learner.base_info)
        best, previous, stopped = learner.snapshot(), None, f"completed {self.rounds} round(s)"
        for r in range(1, self.rounds + 1):
            temperature = fit_temperature(p_val, y_val)
            proba = temperature_scale(learner.proba_target(), temperature)
            if self.balance == "estimated" and r == 1:
                # Once, from the source-only model: BBSE needs a fixed predictor whose source
                # confusion matrix describes it; a model trained on its own pseudo-labels would
                # confirm its earlier estimate.
                prior = estimate_target_prior(p_val, y_val, proba)
            pseudo = select_pseudo_labels(proba, self.fraction_at(r), prior, self.min_confidence)
            change = jaccard_change(previous, pseudo)
            entry = self._round_entry(r, temperature, pseudo, change, label_map)
            if self.balance == "estimated" and prior is not None:
                entry["estimated_prior"] = {str(lab): round(float(q), 4) for lab, q in zip(label_map.labels, prior, strict=True)}
            log.append(entry)
            if len(pseudo.indices) == 0:
                stopped = f"round {r}: no target row reached the thresholds (min_confidence={self.min_confidence})"
                break
            if change is not None and change < self.min_change:
                stopped = f"round {r}: pseudo-labels converged (changed {change:.3f} < min_change={self.min_change})"
                break
            learner.fit(y, y_val, k, pseudo)
            if isinstance(learner, _FinetuneRounds):
                entry["epochs"] = learner.last_epochs
            p_val = learner.proba_val()
            acc = float(np.mean(p_val.argmax(axis=1) == y_val))
            entry["source_val_accuracy"] = round(acc, 4)
            logger.info("self_train round %d: %d pseudo-labels %s, source-val accuracy %.4f (round 0: %.4f)",
                        r, len(pseudo.indices), entry["pseudo_labels"], acc, acc0)
            if acc < acc0 - self.val_tolerance:
                learner.restore(best)
                entry["rolled_back"] = True
                stopped = (f"round {r}: source-val accuracy fell to {acc:.4f} from {acc0:.4f} (> val_tolerance="
                           f"{self.val_tolerance}); kept round {r - 1}'s model")
                break
            best, previous = learner.snapshot(), pseudo
        kept = max(e["round"] for e in log if "source_val_accuracy" in e and not e.get("rolled_back"))
        info = {
            "base": self.base_name, "train_rows": len(y) + len(y_val), "val_rows": len(y_val),
            **({"started_from_base_model": True} if started is not None else {}),
            "target_rows": len(target), "rounds": log, "kept_round": kept, "stopped": stopped,
            **{f"base_{key}": v for key, v in base_info.items() if key in ("best_epoch", "history", "stopped_early")},
        }
        logger.info("self_train: %s; kept round %d", stopped, kept)
        if self.base_name != "frozen":
            cast(Any, encoder).weights_modified = True  # a TrainableEncoder (base.check); save() writes the weights
        classifier = Classifier(encoder, head, label_map, strategy={"name": self.name, "kwargs": self.config()})
        return FitResult(classifier, info)

    def _start(self, base_model: Classifier | None, source: SourceRows,
               label_map: LabelMap) -> tuple[Encoder, Head] | None:
        """Copies of ``base_model``'s encoder and head, round 0's model, when it can be that
        (a finetune or dapt base, and rows that twin would have split the same way); else None."""
        if base_model is None or self.base_name == "frozen":
            return None
        if source.val_idx is not None and len(source.train_idx) + len(source.val) < 20:
            # finetune holds out no validation rows below 20 rows: its model is not round 0's
            logger.info("self_train: base_model not used (under 20 source rows); round 0 is trained")
            return None
        if list(base_model.label_map.labels) != list(label_map.labels):
            raise ValueError(
                f"self_train: base_model predicts {list(base_model.label_map.labels)}, the source rows have "
                f"{list(label_map.labels)}: pass the {self.base_name} model trained on these rows, or none"
            )
        logger.info("self_train: round 0 starts from a copy of the given base model (not trained again)")
        return copy.deepcopy(base_model.encoder), copy.deepcopy(base_model.head)

    @staticmethod
    def _round_entry(r: int, temperature: float, pseudo: PseudoLabels, change: float | None,
                     label_map: LabelMap) -> dict[str, Any]:
        counts = np.bincount(pseudo.labels, minlength=len(label_map))
        return {
            "round": r,
            "temperature": round(temperature, 4),
            "pseudo_labels": {str(lab): int(c) for lab, c in zip(label_map.labels, counts, strict=True)},
            "thresholds": {str(lab): None if t is None else round(t, 4)
                           for lab, t in zip(label_map.labels, pseudo.thresholds, strict=True)},
            "mean_confidence": round(float(pseudo.confidence.mean()), 4) if len(pseudo.confidence) else None,
            "changed": None if change is None else round(change, 4),
        }
