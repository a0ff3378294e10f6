"""The fit-and-score kernel every experiment kind runs on.

- :func:`validate_components`: a setup's registry names, constructor keys and training settings,
  checked when a config is loaded (:mod:`textransfer.config` knows no registries);
- :func:`build_components`: a setup's encoder, head and strategy, fresh (frozen encoders shared
  through :class:`SharedEncoders`);
- :func:`fit_setup`: trains one setup on one training set. It is the only place in textransfer's
  experiments that fits a strategy: its :class:`~textransfer.strategies.base.FitContext` (feature
  cache, training settings, batch size, checkpoint folder and resume) and the unlabeled target
  texts go in, the strategy's :class:`~textransfer.strategies.base.FitResult` comes back;
- :func:`probabilities` and :func:`score`: a classifier on labeled rows, features through the
  cache;
- :class:`FeatureStore`, :func:`run_cache`: the frozen features of a domain computed once per run;
- :func:`is_main_process`: the process that writes (one definition:
  :func:`textransfer.distributed.is_main_process`);
- small data helpers of the curve and layer runs (:func:`split_target`, :func:`covers`,
  :func:`ids_json`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from textransfer._registry import check_params
from textransfer.classifier import Classifier
from textransfer.config import Component, SetupConfig, set_default_head_lookup
from textransfer.data import LabeledTexts, stratified_split
from textransfer.data.sources import DataSource
from textransfer.distributed import is_main_process
from textransfer.encoders.base import ENCODERS, Encoder, FittableEncoder
from textransfer.encoders.cache import FeatureCache, encode_cached
from textransfer.evaluation.scoring import Scored, score_predictions
from textransfer.heads.base import HEADS, Head
from textransfer.strategies.base import STRATEGIES, CapabilityError, FitContext, Strategy
from textransfer.training import checkpoint as ckpt
from textransfer.training.args import TrainingArgs, training_args

__all__ = [
    "Checkpointing", "FeatureStore", "SetupFit", "analysis_limit_notes", "config_cache", "limit_note", "process_folder", "SharedEncoders", "build_components", "check_buildable", "covers",
    "fit_setup", "ids_json", "is_main_process", "probabilities", "reads_frozen_features", "run_cache",
    "saves_checkpoints", "score", "split_target", "training_settings", "validate_components",
]


def _strategy_default_head(name: str) -> str | None:
    """The head a strategy gets when its config names none (None: not a registered strategy)."""
    if name not in STRATEGIES:
        return None
    factory = STRATEGIES.get(name)  # a Strategy class, or a plain factory function of a plug-in
    return factory.default_head if isinstance(factory, type) and issubclass(factory, Strategy) else None


set_default_head_lookup(_strategy_default_head)

logger = logging.getLogger("textransfer.experiments")


# -- components ---------------------------------------------------------------------------------


class SharedEncoders:
    """The frozen encoders of one run, one object per encoder configuration.

    Every setup, seed and pair that reads frozen features of the same encoder config gets the
    same object, so pretrained weights are loaded once per run, not once per fit (a MiniLM
    cross-domain grid loaded them once per setup, seed and pair: its ``dim`` loads the weights).
    Encoders that learn from their data (fittable: TF-IDF, static) and encoders of strategies
    that train them (fine-tuning, DANN) are never shared: each fit gets fresh ones.
    """

    def __init__(self) -> None:
        self._pool: dict[str, Encoder] = {}

    def get(self, spec: Component) -> Encoder:
        """The run's encoder of ``spec`` (built on first use), or a fresh one when it learns."""
        key = json.dumps({"name": spec.name, **spec.params()}, sort_keys=True, default=str)
        encoder = self._pool.get(key)
        if encoder is None:
            encoder = ENCODERS.create(spec.name, **spec.params())
            if isinstance(encoder, FittableEncoder):
                return encoder  # fitted on each fit's own training data: never shared
            self._pool[key] = encoder
        return encoder


def reads_frozen_features(strategy: Strategy) -> bool:
    """True when the strategy reads frozen features of its inputs (asked of the object: a
    ``self_train`` over a frozen base does, over a finetune base does not), so the feature cache
    can be filled ahead and its encoder shared."""
    return bool(strategy.reads_frozen_features)


def saves_checkpoints(strategy: Strategy) -> bool:
    """True when the strategy writes epoch checkpoints (fine-tuning), so ``--resume`` applies."""
    return bool(strategy.supports_checkpoints)


def training_settings(setup: SetupConfig, seed: int) -> TrainingArgs:
    """The :class:`TrainingArgs` a fit of ``setup`` with ``seed`` trains with."""
    return training_args({"seed": seed, **(setup.training or {})})


def build_components(
    setup: SetupConfig, encoders: SharedEncoders | None = None
) -> tuple[Encoder, Head, Strategy]:
    """Fresh encoder, head and strategy of ``setup``, checked to go together
    (:meth:`Strategy.check <textransfer.strategies.base.Strategy.check>`: loads no weights);
    :func:`fit_setup` gives the strategy its fit context.

    With ``encoders``, a strategy that reads frozen features gets the run's shared encoder of
    that config (:class:`SharedEncoders`) instead of a fresh one.
    """
    assert setup.encoder is not None and setup.strategy is not None
    strategy = STRATEGIES.create(setup.strategy.name, **setup.strategy.params())
    if encoders is not None and reads_frozen_features(strategy):
        encoder = encoders.get(setup.encoder)
    else:
        encoder = ENCODERS.create(setup.encoder.name, **setup.encoder.params())
    head = HEADS.create(setup.strategy.head.name, **setup.strategy.head.params())
    try:  # a strategy that cannot train this pair fails before any fit of the run
        strategy.check(encoder, head)
    except CapabilityError as exc:
        raise CapabilityError(f"setup {setup.name}: {exc}") from None
    return encoder, head, strategy


def check_buildable(setups: list[SetupConfig]) -> None:
    """Builds (and drops) the components of each setup, so that a constructor's range check
    fails before any output is written; cheap, as encoders load their weights on first use."""
    for setup in setups:
        training_settings(setup, 0)
        build_components(setup)


def validate_components(setup: SetupConfig, where: str = "") -> None:
    """Checks registry names and constructor keys of a setup's components, and its training
    settings, when a config is loaded (each kind's config validator calls it).

    Raises:
        ValueError: an unknown name (listing the known ones), an unknown or misplaced key, or a
            value out of range, naming ``<where>.<section>``.
    """
    prefix = f"{where}." if where else ""
    assert setup.encoder is not None and setup.strategy is not None
    if setup.encoder.name in ENCODERS.names():  # precision's values and the encoders without one
        from textransfer.precision import check_encoder_precision

        check_encoder_precision(setup.encoder.name, setup.encoder.params(), prefix + "encoder")
    for section, registry, comp, params in (
        ("encoder", ENCODERS, setup.encoder, setup.encoder.params()),
        ("strategy", STRATEGIES, setup.strategy, setup.strategy.params()),
        ("strategy.head", HEADS, setup.strategy.head, setup.strategy.head.params()),
    ):
        check_params(registry.get(comp.name), params, section=prefix + section, name=comp.name)
    training_args(setup.training or {}, section=prefix + "training")  # keys, types and ranges


# -- fitting ------------------------------------------------------------------------------------


@dataclass
class Checkpointing:
    """Epoch checkpoints of one fit (strategies that train the encoder).

    Attributes:
        directory: where the checkpoints go.
        resume: continue from the newest one.
        fingerprints: what the checkpoints record they were trained on, for ``--resume`` to check.
    """

    directory: Path
    resume: bool = False
    fingerprints: dict[str, Any] | None = None


@dataclass
class SetupFit:
    """What :func:`fit_setup` returns.

    Attributes:
        classifier: the trained classifier.
        info: the fit info of the strategy's :class:`~textransfer.strategies.base.FitResult`
            (with its training ``history`` when it has one), plus ``train_rows`` (default: the
            rows given) and ``fit_seconds``.
        training: the training settings the fit used.
    """

    classifier: Classifier
    info: dict[str, Any] = field(default_factory=dict)
    training: TrainingArgs = field(default_factory=TrainingArgs)

    def info_without_history(self) -> dict[str, Any]:
        """``info`` less the per-epoch history (kept in ``history.json`` instead)."""
        return {k: v for k, v in self.info.items() if k != "history"}


def fit_setup(
    setup: SetupConfig,
    train: LabeledTexts,
    *,
    seed: int,
    cache: FeatureCache | None,
    batch_size: int,
    val: LabeledTexts | None = None,
    target_unlabeled: LabeledTexts | None = None,
    components: tuple[Encoder, Head, Strategy] | None = None,
    encoders: SharedEncoders | None = None,
    encoder: Encoder | None = None,
    strategy: Strategy | None = None,
    min_steps: int | None = None,
    checkpoints: Checkpointing | None = None,
    warm: Callable[[Encoder], None] | None = None,
    base_model: Classifier | None = None,
) -> SetupFit:
    """Trains a fresh copy of ``setup`` on ``train``: the one place a strategy is fitted.

    Args:
        setup: the encoder, head and strategy to build (its components' configs).
        train: the labeled training data.
        seed: seeds the training settings (``training.seed``).
        cache: the feature cache of frozen features (None: encode every time).
        batch_size: inputs per encoder call.
        val: validation rows (early stopping, best epoch).
        target_unlabeled: unlabeled target texts for adaptation strategies; must carry no labels.
        components: the setup's ``(encoder, head, strategy)`` built ahead (:func:`build_components`).
        encoders: the run's shared frozen encoders.
        encoder: start from this encoder (e.g. a source-trained one) instead of the setup's.
        strategy: use this strategy object instead of the setup's.
        min_steps: raise ``training.epochs`` so that at least this many optimiser steps run.
        checkpoints: where a strategy that ``supports_checkpoints`` writes its epoch checkpoints
            (not given to the others).
        warm: called with the encoder before a frozen-feature strategy fits, e.g. to fill the
            cache from one encoding of the whole domain.
        base_model: the trained model of the strategy's :meth:`~Strategy.base_fit` on the same
            rows, seed and settings (``FitContext.base_model``); the caller checks "the same".

    Raises:
        AssertionError: ``target_unlabeled`` carries labels (target labels never reach training).
    """
    if target_unlabeled is not None and target_unlabeled.labels is not None:
        raise AssertionError("target labels must never reach training: pass .without_labels()")
    built_encoder, head, built_strategy = components or build_components(setup, encoders)
    encoder = encoder or built_encoder
    strategy = strategy or built_strategy
    training = training_settings(setup, seed)
    if min_steps:
        per_epoch = max(1, math.ceil(len(train) / training.batch_size))
        training = replace(training, epochs=max(training.epochs, math.ceil(min_steps / per_epoch)))
    context = FitContext(training=training, cache=cache, batch_size=batch_size, base_model=base_model)
    recording: Any = contextlib.nullcontext()
    if saves_checkpoints(strategy) and checkpoints is not None:
        context = replace(context, checkpoint_dir=checkpoints.directory, resume=checkpoints.resume)
        if checkpoints.fingerprints is not None:  # each checkpoint records what it is trained on
            recording = ckpt.recording(checkpoints.directory, checkpoints.fingerprints)
    if warm is not None and reads_frozen_features(strategy):
        warm(encoder)
    t0 = time.perf_counter()
    with recording:
        result = strategy.fit_with_context(encoder, head, train, val=val, target_unlabeled=target_unlabeled,
                                           context=context)
    info = dict(result.info)
    info.setdefault("train_rows", len(train))
    info["fit_seconds"] = round(time.perf_counter() - t0, 2)
    return SetupFit(classifier=result.classifier, info=info, training=training)


# -- scoring ------------------------------------------------------------------------------------


def probabilities(clf: Classifier, data: LabeledTexts, cache: FeatureCache | None, batch_size: int) -> np.ndarray:
    """``(n, k)`` class probabilities of ``clf`` on ``data``; frozen features go through the
    cache, those of a trained encoder do not (they are used once)."""
    feats = encode_cached(clf.encoder, data, None if clf.encoder_trained else cache, batch_size=batch_size)
    return clf.predict_proba_features(feats)


def score(
    clf: Classifier, data: LabeledTexts, cache: FeatureCache | None, batch_size: int,
    n_boot: int = 0, ece_bins: int = 15, seed: int = 0,
) -> Scored:
    """Scores ``clf`` on labeled ``data``: accuracy, macro-F1, per-class scores, confusion, ECE
    and (``n_boot`` > 0) 95% bootstrap intervals, with the probabilities."""
    proba = probabilities(clf, data, cache, batch_size)
    return score_predictions(clf.label_map.encode(data.labels or []), proba, clf.labels, n_boot, ece_bins, seed)


# -- features -----------------------------------------------------------------------------------


@contextlib.contextmanager
def run_cache(cache_dir: str | None) -> Iterator[FeatureCache]:
    """The configured feature cache; with ``cache_dir: null`` a temporary one for this run only,
    so the frozen features of a domain are still computed once, not once per budget."""
    if cache_dir:
        yield FeatureCache(Path(cache_dir).expanduser())
        return
    with tempfile.TemporaryDirectory(prefix="textransfer-features-") as tmp:
        yield FeatureCache(tmp)


@contextlib.contextmanager
def process_folder(path: Path) -> Iterator[Path]:
    """Where this process writes the models a run trains and reads back (source models, base
    networks): ``path`` in the main process; in the others of a multi-process launch a temporary
    folder removed at the end, so that only the main process writes into the run directory."""
    if is_main_process():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="textransfer-rank-") as tmp:
        yield Path(tmp)


def config_cache(cache_dir: str | None) -> FeatureCache | None:
    """The configured feature cache, or None with ``cache_dir: null``."""
    return FeatureCache(Path(cache_dir).expanduser()) if cache_dir else None


class FeatureStore:
    """Fills the feature cache of frozen, non-fittable encoders from one encoding of each domain.

    A split of a domain is a subset of its rows, so its features are rows of the domain's
    features: writing them under the split's cache key means every seed's splits are read, not
    encoded again (MiniLM encodes ~200 sentences/s on 2 cores).
    """

    def __init__(self, cache: FeatureCache | None, batch_size: int) -> None:
        self.cache = cache
        self.batch_size = batch_size
        self._full: dict[tuple[str, str], tuple[Any, dict[Any, int]]] = {}

    def warm(self, encoder: Encoder, full: LabeledTexts, *parts: LabeledTexts | None) -> None:
        """Writes the features of each of ``parts`` (subsets of ``full``) into the cache."""
        if self.cache is None or self.cache.directory is None or isinstance(encoder, FittableEncoder):
            return
        key = (encoder.fingerprint(), full.fingerprint())
        if key not in self._full:
            feats = encode_cached(encoder, full, self.cache, self.batch_size)
            index = {rid: i for i, rid in enumerate(full.ids)}
            self._full[key] = (feats, index if len(index) == len(full) else {})
        feats, index = self._full[key]
        for part in parts:
            if part is None or not index or any(rid not in index for rid in part.ids):
                continue
            rows = [index[rid] for rid in part.ids]
            if not all(_same_input(full.texts[i], t) for i, t in zip(rows, part.texts, strict=True)):
                continue  # not a subset of `full` after all: let encode_cached encode it
            part_key = FeatureCache.key(encoder, part)
            if self.cache.get(part_key) is None:
                self.cache.put(part_key, feats[rows])


def _same_input(a: Any, b: Any) -> bool:
    """Equality for texts and for images (arrays), which ``==`` compares element-wise."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


# -- data helpers of the curve and layer runs ---------------------------------------------------


def split_target(target: LabeledTexts, test_size: float, seed: int) -> tuple[LabeledTexts, LabeledTexts]:
    """``(pool, test)``: the labeled pool budgets are drawn from and the held-out test split."""
    if target.labels is None:
        raise ValueError(f"target {target.domain!r} has no labels: set `label_column` in its data config")
    try:
        pool, test = stratified_split(target, test_size, seed=seed)
    except ValueError as exc:
        raise ValueError(f"target {target.domain!r} is too small for test_size={test_size}: {exc}") from None
    test.domain = pool.domain
    return pool, test


def limit_note(where: str, spec: DataSource, data: LabeledTexts) -> str | None:
    """A note when ``spec.limit`` asks for more rows than ``data`` (what was loaded) has."""
    if spec.limit is None or spec.limit <= len(data):
        return None
    return (
        f"{where}: limit {spec.limit} is above the {len(data)} usable rows of {spec.source!r}, "
        f"so all {len(data)} are used"
    )


def analysis_limit_notes(config: Any, target: LabeledTexts, source: LabeledTexts | None) -> list[str]:
    """:func:`limit_note` for the target and (when there is one) the source of a curve or layer
    run, each also logged as a warning."""
    notes = [limit_note("target", config.target, target)]
    if source is not None and config.source is not None:
        notes.append(limit_note("source", config.source, source))
    kept = [n for n in notes if n is not None]
    for note in kept:
        logger.warning("%s", note)
    return kept


def covers(clf: Classifier, data: LabeledTexts) -> bool:
    """True when every label of ``data`` is one of ``clf``'s classes."""
    return {str(lab) for lab in data.labels or []} <= {str(lab) for lab in clf.labels}


def ids_json(ids: list[Any]) -> list[Any]:
    """Row ids as JSON values (numpy ints -> int)."""
    return [i.item() if isinstance(i, np.generic) else i for i in ids]


def write_json(path: Path, payload: Any) -> None:
    """``payload`` as indented JSON (what every kind's ``metrics.json`` is)."""
    path.write_text(json.dumps(payload, indent=2, default=str))
