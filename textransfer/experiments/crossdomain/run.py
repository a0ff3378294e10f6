"""Cross-domain experiments: train on source domains, score on target domains, explain the gap.

For every setup (encoder x strategy of the grid), every (source, target) pair and every seed::

    in-domain     model trained on the source train split, scored on the source test split
    cross-domain  the same model scored on the target test split
    label-free    the same model's estimate of its target accuracy from its confidences on the
                  target texts, calibrated on source validation rows held out of the source
                  train split (``source_val_size``); the only measure for an unlabeled target
    oracle        the same setup trained on the target train split, scored on the target test split
    target-only   a learning curve: frozen encoder + the same head trained on nested samples of
                  ``evaluation.label_budgets`` target train labels, scored on the target test
                  split; each setup's *worth in target labels* is where it crosses the curve

Target labels are used only to score, and to train the oracle and target-only baselines; what a
strategy trained on the source sees of the target is ``target_unlabeled``: the texts of the
target *train* split with ``labels=None`` (never the target test split). Output (``run`` below):
``config.resolved.yaml``, ``metrics.json``, ``report.md`` and ``plots/*.png`` in the run dir, and
with ``save_models: true`` the source-trained model of each setup and pair (first seed it runs on)
under ``models/<setup>/<source>_to_<target>/``, ready for ``textransfer.load``.

Example:
    >>> result = run_crossdomain("configs/movies_to_products.yaml")  # doctest: +SKIP
    >>> result.metrics["rows"][0]["cross_domain"]["accuracy"]["mean"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textransfer import tracking
from textransfer._progress import progress
from textransfer.config import Component, RunDirectory, SetupConfig, StrategyConfig, resolve_config
from textransfer.data import LabeledTexts, stratified_split
from textransfer.data import load as load_data
from textransfer.data.budgets import budget_samples, resolve_budgets
from textransfer.data.labeled import LabelMap
from textransfer.encoders.base import FittableEncoder
from textransfer.encoders.cache import encode_cached, log_cache_summary
from textransfer.evaluation.label_free import label_free_estimates
from textransfer.evaluation.scoring import Scored, score_predictions
from textransfer.experiments._kernel import (
    FeatureStore,
    SharedEncoders,
    check_buildable,
    config_cache,
    fit_setup,
    is_main_process,
    probabilities,
    score,
    training_settings,
    write_json,
)
from textransfer.experiments.crossdomain.config import CrossDomainConfig, load_crossdomain_config
from textransfer.hub import training_data_record
from textransfer.strategies.base import STRATEGIES, is_source_only

__all__ = [
    "CrossDomainConfig", "CrossDomainResult", "CrossDomainRun", "load_crossdomain_config", "load_domains",
    "run_crossdomain",
]

logger = logging.getLogger("textransfer.experiments.crossdomain")


@dataclass
class DomainSplit:
    """One domain for one seed.

    Attributes:
        full: every row that was loaded.
        train: the labeled train split (None when the domain has no labels).
        test: the held-out labeled test split (None when the domain has no labels).
        unlabeled: what adaptation may see: the train split's texts without labels, or all texts
            of an unlabeled domain.
        val: source validation rows held out of the train split (``source_val_size``), never
            trained on: they calibrate the label-free estimates (None: not a source, or 0).
    """

    full: LabeledTexts
    train: LabeledTexts | None
    test: LabeledTexts | None
    unlabeled: LabeledTexts
    val: LabeledTexts | None = None


@dataclass
class SharedFit:
    """A source-only fit kept for the rest of its seed (other targets, setups that start from
    it): the ``classifier``, its fit ``info``, the pair ``folder`` it was trained for, the
    training ``histories`` it filed and the ``setup`` that trained it."""

    classifier: Any
    info: dict[str, Any]
    folder: str
    histories: list[dict[str, Any]] = field(default_factory=list)
    setup: str = ""


@dataclass
class CrossDomainResult:
    """What :func:`run_crossdomain` returns: the run directory, metrics.json's content and the
    per-seed scores (with predictions) the plots are drawn from."""

    run_dir: Path
    metrics: dict[str, Any]
    scores: dict[tuple[str, ...], list[Scored]] = field(default_factory=dict)


def load_domains(config: CrossDomainConfig) -> tuple[dict[str, LabeledTexts], LabelMap]:
    """Loads every domain once and checks that label sets agree.

    Raises:
        ValueError: a source without labels, or a domain with a label the sources do not have.
    """
    data = {name: load_data(spec) for name, spec in config.domains.items()}
    src_labels: set[Any] | None = None
    for name in config.sources:
        if data[name].labels is None:
            raise ValueError(
                f"source domain {name!r} has no labels: a source must be labeled (set `label_column` in "
                f"domains.{name}); an unlabeled domain can only be a target"
            )
        labels = set(data[name].labels or [])
        if src_labels is not None and labels != src_labels:
            raise ValueError(
                f"source domains disagree on labels: {name!r} has {sorted(map(str, labels))}, another source "
                f"has {sorted(map(str, src_labels))}; rename with `label_map:` in domains.{name}"
            )
        src_labels = labels
    assert src_labels is not None
    for name, d in data.items():
        extra = set(d.labels or []) - src_labels
        if extra:
            raise ValueError(
                f"domain {name!r} has label(s) {sorted(map(str, extra))} that the source domains do not have "
                f"({sorted(map(str, src_labels))}): map them with `label_map:` in domains.{name}, e.g. "
                f"label_map: {{{str(sorted(map(str, extra))[0])!r}: {str(sorted(map(str, src_labels))[0])!r}}}"
            )
    return data, LabelMap.from_labels(sorted(src_labels, key=str))


def split_domain(name: str, data: LabeledTexts, test_size: float, seed: int, val_size: float = 0.0) -> DomainSplit:
    """Stratified train/test split of a labeled domain; an unlabeled one is all ``unlabeled``.

    ``val_size`` > 0 (sources) also holds a stratified fraction of the train split out as
    ``val``, the source validation rows of the label-free estimates.
    """
    if data.labels is None:
        return DomainSplit(full=data, train=None, test=None, unlabeled=data)
    try:
        train, test = stratified_split(data, test_size, seed=seed)
    except ValueError as exc:
        raise ValueError(
            f"domain {name!r} is too small for test_size={test_size} ({len(data)} rows, "
            f"{data.label_counts()}): {exc}. Use more data or another test_size"
        ) from None
    test.domain = train.domain
    val = None
    if val_size > 0:
        try:
            train, val = stratified_split(train, val_size, seed=seed)
        except ValueError as exc:
            raise ValueError(
                f"source domain {name!r} is too small for source_val_size={val_size} ({len(train)} train "
                f"rows): {exc}. Use more data, or source_val_size: 0 (no label-free estimates)"
            ) from None
        val.domain = train.domain
    return DomainSplit(full=data, train=train, test=test, unlabeled=train.without_labels(), val=val)


class CrossDomainRun:
    """Runs the grid of a :class:`CrossDomainConfig`; :func:`run_crossdomain` is the entry point."""

    def __init__(self, config: CrossDomainConfig) -> None:
        self.config = config
        ev = config.evaluation
        self.n_boot, self.ece_bins = ev.n_boot, ev.ece_bins
        self.cache = config_cache(config.cache_dir)
        self.store = FeatureStore(self.cache, config.batch_size)
        self.scores: dict[tuple[str, ...], list[Scored]] = {}
        self.records: list[dict[str, Any]] = []
        self.proxy_a_distances: list[dict[str, Any]] = []  # one entry per (encoder, pair, seed)
        self.notes: list[str] = []
        self.full: dict[str, LabeledTexts] = {}  # domain name -> every loaded row (set by run_seed)
        self.model_dir: Path | None = None  # where source-trained models are saved (save_models)
        self.saved: set[Path] = set()
        self.oracle_of = {setup.name: config.strategies[sname].oracle for setup, _, sname in config.grid()}
        # (twin setup as JSON, target, seed) -> that seed's target-only curve, shared by every
        # setup with the same frozen twin (e.g. frozen, CORAL and CORAL-cov of one encoder).
        self.curves: dict[tuple[str, str, int], dict[str, Any]] = {}
        # Frozen encoders are loaded once per run and shared by every fit (fine-tuned ones never).
        self.encoders = SharedEncoders()
        self.tracker: Any = None  # a textransfer.tracking.Tracker when the config tracks
        # (setup, "<train domain>_to_<target>") -> the training histories of its fits, every seed
        self.histories: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # fit key -> a source-only model of the current seed (see source_model)
        self.seed_fits: dict[str, SharedFit] = {}
        self.wanted_fits: set[str] = set()  # keys of the fits a later setup of the seed starts from

    # -- building blocks ------------------------------------------------------------------------

    def fit(
        self, setup: SetupConfig, train: LabeledTexts, seed: int, target_unlabeled: LabeledTexts | None,
        scored: tuple[LabeledTexts | None, ...] = (), base_model: Any = None,
    ) -> Any:
        """Trains a fresh copy of ``setup`` (:func:`~textransfer.experiments._kernel.fit_setup`);
        ``target_unlabeled`` must carry no labels. The frozen features of ``train``, the target
        texts and ``scored`` (rows the model is scored on next) are cached ahead."""

        def warm(encoder: Any) -> None:  # subsets of a domain: read, not encoded again
            for part in (train, target_unlabeled, *scored):
                if part is not None and part.domain in self.full:
                    self.store.warm(encoder, self.full[part.domain], part)

        # Grid setups (not the target-only twins) keep their training history and track it:
        # under "<train domain>_to_<target>" (the oracle's is "<target>_to_<target>").
        grid = setup.name in self.oracle_of
        folder = f"{train.domain}_to_{(target_unlabeled or train).domain}"
        with tracking.recording(self.tracker if grid else None, f"{setup.name}/{folder}/seed{seed}/",
                                label=f"seed {seed}") as record:
            fit = fit_setup(setup, train, seed=seed, cache=self.cache, batch_size=self.config.batch_size,
                            target_unlabeled=target_unlabeled, encoders=self.encoders, warm=warm,
                            base_model=base_model)
        if grid and record.fits:
            self.histories.setdefault((setup.name, folder), []).extend(record.fits)
        info = fit.info
        # A trained encoder's worth in labels is read off its frozen twin's curve: say so.
        info["encoder_trained"] = fit.classifier.encoder_trained
        return fit.classifier, info

    def proba(self, clf: Any, data: LabeledTexts) -> Any:
        """``(n, k)`` class probabilities of ``clf`` on ``data`` (features through the cache)."""
        return probabilities(clf, data, self.cache, self.config.batch_size)

    def score(self, clf: Any, data: LabeledTexts, key: tuple[str, ...], seed: int) -> dict[str, Any]:
        """Scores ``clf`` on labeled ``data`` and keeps the predictions under ``key``."""
        scored = score(clf, data, self.cache, self.config.batch_size, self.n_boot, self.ece_bins, seed)
        self.scores.setdefault(key, []).append(scored)
        return {"domain": data.domain, **scored.metrics}

    def save_model(self, clf: Any, setup: str, source: str, target: str, seed: int, train: LabeledTexts,
                   rec: dict[str, Any], val: LabeledTexts | None, val_proba: Any) -> None:
        """Saves a source-trained model once per (setup, pair): on the first seed it runs on,
        with its training data and in-domain / cross-domain scores for the model card, and its
        outputs ``val_proba`` on the source validation rows ``val`` (held out of training; None
        when there are none), from which ``textransfer evaluate`` estimates its accuracy on
        unlabeled data later."""
        if self.model_dir is None or not is_main_process():  # one process writes the run directory
            return
        path = self.model_dir / setup / f"{source}_to_{target}"
        if path in self.saved:
            return
        source_spec = self.config.domains[source].source if source in self.config.domains else None
        clf.training_data = training_data_record(train, source_spec)
        kinds = ("in_domain",) if rec.get("same_domain") else ("in_domain", "cross_domain")
        clf.metrics = {
            kind: {key: rec[kind][key] for key in ("domain", "accuracy", "macro_f1", "accuracy_ci95") if key in rec[kind]}
            for kind in kinds if "accuracy" in rec.get(kind, {})
        }
        if val is not None and val.labels is not None and len(val):
            clf.set_calibration(val_proba, clf.label_map.encode(val.labels),
                                f"{len(val)} rows of {source}'s train split held out of training "
                                f"(source_val_size {self.config.source_val_size}, seed {seed})")
        # replaces what an earlier run of the same config left there
        clf.save(path, portable=self.config.portable_models)
        self.saved.add(path)
        logger.info("saved %s (trained on %s, seed %d) to %s", setup, source, seed, path)

    def frozen_baseline(self, setup: SetupConfig) -> SetupConfig:
        """The same encoder and head with the frozen strategy (the target-only baseline).

        Its training settings (torch heads) are those of the setup itself when it is frozen, else
        of a frozen grid strategy with the same head, else the top-level ``training``: an
        adaptation's own settings (e.g. DANN's encoder learning rate) are not meant for a head.

        A ``linear`` head is fitted as logistic regression (C = 1) here, the same linear softmax
        model trained to convergence: a torch linear head trained for 10 epochs at lr 1e-3 (the
        defaults until the linear head got its own 1e-2) on 8-1024 rows stayed near its random
        initialisation (measured on products, MiniLM mean-pooled
        features, seeds 0-2: 0.42-0.58 accuracy at 64 labels, below the majority class, against
        0.70-0.75 for logistic regression; 0.80-0.82 against 0.82-0.84 on all 2,388 rows), and
        a curve that low overstates what a transfer is worth in target labels.
        """
        assert setup.strategy is not None
        training = setup.training
        head = setup.strategy.head
        if head.name == "linear":
            head = Component.model_validate({"name": "logreg", "C": 1.0})
        if setup.strategy.name != "frozen":
            same_head = [
                s for s in self.config.strategies.values()
                if s.name == "frozen" and s.head.model_dump() == setup.strategy.head.model_dump()
            ]
            training = {**self.config.training, **((same_head[0].training or {}) if same_head else {})}
        return SetupConfig(
            name=f"{setup.name}:target-only",
            encoder=setup.encoder,
            strategy=StrategyConfig(name="frozen", head=head),
            training=training,
        )

    # -- the grid -----------------------------------------------------------------------------

    def run_seed(self, seed: int, data: dict[str, LabeledTexts]) -> None:
        cfg = self.config
        split_seed = seed if cfg.split_seed is None else cfg.split_seed
        doms = {
            name: split_domain(name, d, cfg.test_size, split_seed, cfg.source_val_size if name in cfg.sources else 0.0)
            for name, d in data.items()
        }
        self.full = {d.domain: d for d in data.values()}
        measured = cfg.evaluation.a_distance_encoders
        for ename, enc in cfg.encoders.items():
            if measured is None or ename in measured:
                self.measure_proxy_a_distance(ename, enc, doms, seed)
        self.seed_fits = {}
        setups = [setup for setup, _, sname in cfg.grid() if seed in cfg.seeds_of(sname)]
        keys = {setup.name: [self.fit_keys(setup, source, seed, target) for source, target in cfg.pairs()]
                for setup in setups}
        self.wanted_fits = {base for pairs in keys.values() for _, base in pairs if base is not None}
        # A setup whose fit another one starts from runs first (self_train's finetune or dapt twin);
        # every fit seeds itself, so the order changes no result, and the report keeps the config's.
        setups.sort(key=lambda setup: not any(own in self.wanted_fits for own, _ in keys[setup.name]))
        for setup in setups:
            oracles: dict[str, dict[str, Any]] = {}
            assert setup.strategy is not None
            adapts = getattr(STRATEGIES.get(setup.strategy.name), "needs_target_texts", False) is True
            for source, target in cfg.pairs():
                if adapts and cfg.same_domain(source, target):
                    # Adapting a model to its own source domain trains it once more for nothing: its
                    # in-domain accuracy is already in each of its cross-domain rows.
                    self._note(f"`{setup.name}` is not run on {source} → {target}: the target is its own source, "
                               "so an adaptation has nothing to adapt to (its in-domain accuracy is in each of "
                               "its cross-domain rows)")
                    continue
                self.run_pair(setup, source, target, doms, seed, oracles)
            # A model outlives its setup's pairs only when a later setup starts from it.
            self.seed_fits = {key: fit for key, fit in self.seed_fits.items() if key in self.wanted_fits}
        self.seed_fits = {}

    def measure_proxy_a_distance(self, ename: str, enc: Component, doms: dict[str, DomainSplit], seed: int) -> None:
        """Proxy A-distance of each (source, target) pair on this encoder's frozen features."""
        from textransfer.evaluation.divergence import A_DISTANCE_MIN_ROWS, proxy_a_distance

        pairs = [(s, t) for s, t in self.config.pairs() if not self.config.same_domain(s, t)]
        for source, target in progress(pairs, desc=f"A-distance ({ename})", unit="pair"):
            src, tgt = doms[source], doms[target]
            assert src.test is not None
            tgt_part, tgt_rows = ("test split", tgt.test) if tgt.test is not None else ("texts", tgt.unlabeled)
            small = [f"{name}'s {part} has {len(rows)}" for name, part, rows in
                     ((source, "test split", src.test), (target, tgt_part, tgt_rows)) if len(rows) < A_DISTANCE_MIN_ROWS]
            if small:
                self._note(f"No proxy A-distance for {source} → {target}: {' and '.join(small)} row(s); it needs at "
                           f"least {A_DISTANCE_MIN_ROWS} per domain (more data, or a larger test_size)")
                continue
            encoder = self.encoders.get(enc)  # a fresh one when it is fitted on the source
            if isinstance(encoder, FittableEncoder):
                assert src.train is not None
                encoder.fit(src.train.texts)
            self.store.warm(encoder, src.full, src.train, src.test, src.unlabeled)
            self.store.warm(encoder, tgt.full, tgt.train, tgt.test, tgt.unlabeled)
            xs = encode_cached(encoder, src.test, self.cache, self.config.batch_size)
            xt = encode_cached(encoder, tgt_rows, self.cache, self.config.batch_size)
            measured = proxy_a_distance(xs, xt, seed=seed, max_rows=self.config.evaluation.a_distance_rows)
            self.proxy_a_distances.append({"encoder": ename, "source": source, "target": target, "seed": seed, **measured})

    def fit_key(self, setup: SetupConfig, strategy: tuple[str, dict[str, Any]], source: str, seed: int,
                target: str | None = None) -> str:
        """What makes two source fits of one seed the same model: the strategy and its
        ``config()``, the encoder and head configs, the training settings and the source; and
        the target for a strategy that reads the target texts (``target``; None: source-only)."""
        assert setup.encoder is not None and setup.strategy is not None
        head = setup.strategy.head
        return json.dumps({
            "strategy": strategy[0], "config": strategy[1],
            "encoder": {"name": setup.encoder.name, **setup.encoder.params()},
            "head": {"name": head.name, **head.params()},
            "training": dataclasses.asdict(training_settings(setup, seed)),
            "source": source, "seed": seed, **({} if target is None else {"target": target}),
        }, sort_keys=True, default=str)

    def fit_keys(self, setup: SetupConfig, source: str, seed: int, target: str) -> tuple[str, str | None]:
        """``(own, base)``: the key of ``setup``'s fit on ``source`` -> ``target`` (the same for
        every target when its strategy is source-only), and the key of the fit it starts from
        (:meth:`Strategy.base_fit`: a source-only ``finetune``, or a ``dapt`` of the same pair);
        None when it starts from none."""
        assert setup.strategy is not None
        strategy = STRATEGIES.create(setup.strategy.name, **setup.strategy.params())
        own = self.fit_key(setup, (setup.strategy.name, strategy.config()), source, seed,
                           None if is_source_only(setup.strategy.name) else target)
        base_fit = getattr(strategy, "base_fit", None)  # a plug-in's factory may return any object
        base = base_fit() if callable(base_fit) else None
        if base is None:
            return own, None
        return own, self.fit_key(setup, base, source, seed, None if is_source_only(base[0]) else target)

    def source_model(
        self, setup: SetupConfig, src: DomainSplit, tgt: DomainSplit, seed: int,
        scored: tuple[LabeledTexts | None, ...],
    ) -> tuple[Any, dict[str, Any]]:
        """``setup``'s model and fit info for the pair ``src`` -> ``tgt`` (trained on ``src``).

        No model is trained twice in a seed:

        - A source-only strategy (:func:`~textransfer.strategies.base.is_source_only`: frozen,
          finetune, zero_shot) never reads the target texts, so its model is the same for every
          target: it is trained for the first and scored on the others. Their fit info says so
          (``shared_fit``) and keeps the one fit's time; its training history is filed under
          each pair, and a tracker logs the one training run once.
        - A strategy that starts with another's fit (``self_train`` over ``finetune``, or over
          ``dapt`` of the same pair: round 0, :meth:`~textransfer.strategies.base.Strategy.base_fit`)
          gets that model when an earlier setup of the seed trained it with the same settings
          (:meth:`fit_key`), and starts from a copy. A fit that reads the target is kept for
          that only (``wanted_fits``). Its fit info says so (``base_model``, ``base_fit_seconds``:
          ``fit_seconds`` is then what this fit added) and the twin's training history comes
          first in its own.
        """
        assert setup.strategy is not None and src.train is not None
        target_texts = tgt.unlabeled.without_labels()
        folder = f"{src.train.domain}_to_{target_texts.domain}"
        own, base = self.fit_keys(setup, src.train.domain, seed, target_texts.domain)
        shared = is_source_only(setup.strategy.name)  # one model for every target of the source
        earlier = self.seed_fits.get(own) if shared else None
        if earlier is not None:
            if earlier.histories:
                self.histories.setdefault((setup.name, folder), []).extend(earlier.histories)
            note = (f"{earlier.setup} trained once for {earlier.folder} (seed {seed}) and scored here too: "
                    "a source-only fit does not read the target")
            return earlier.classifier, {**earlier.info, "shared_fit": note}
        start = None if base is None else self.seed_fits.get(base)
        before = len(self.histories.get((setup.name, folder), []))
        clf, info = self.fit(setup, src.train, seed, target_texts, scored,
                             base_model=None if start is None else start.classifier)
        if start is not None:
            self.histories.setdefault((setup.name, folder), [])[before:before] = start.histories
            info["base_model"] = (f"round 0 is {start.setup}'s model of this seed ({start.folder}), "
                                  "copied, not trained again")
            info["base_fit_seconds"] = start.info.get("fit_seconds")
        if shared or own in self.wanted_fits:  # a target-reading fit is kept only for one that starts from it
            histories = self.histories.get((setup.name, folder), [])[before:]
            self.seed_fits[own] = SharedFit(clf, info, folder, list(histories), setup.name)
        return clf, info

    def run_pair(
        self, setup: SetupConfig, source: str, target: str, doms: dict[str, DomainSplit], seed: int,
        oracles: dict[str, dict[str, Any]],
    ) -> None:
        ev = self.config.evaluation
        src, tgt = doms[source], doms[target]
        assert src.train is not None and src.test is not None
        same = self.config.same_domain(source, target)
        k = (setup.name, source, target)
        rec: dict[str, Any] = {"setup": setup.name, "source": source, "target": target, "seed": seed, "same_domain": same}
        scored = (src.test, src.val, tgt.test if tgt.test is not None else tgt.unlabeled)
        clf, rec["fit"] = self.source_model(setup, src, tgt, seed, scored)
        rec["in_domain"] = self.score(clf, src.test, (*k, "in_domain"), seed)
        if same:
            rec["cross_domain"] = rec["in_domain"]
            in_key = (*k, "in_domain")  # a name, not `d[(*k, ...)]`: mypy reads that as 3.11-only syntax
            self.scores.setdefault((*k, "cross_domain"), []).append(self.scores[in_key][-1])
        elif tgt.test is None:
            rec["cross_domain"] = {"missing": f"target {target!r} has no labels: cross-domain accuracy, oracle, "
                                   "gap and negative transfer need a labeled target (set `label_column`)"}
        else:
            rec["cross_domain"] = self.score(clf, tgt.test, (*k, "cross_domain"), seed)
        val_proba = None if src.val is None else self.proba(clf, src.val)  # the label-free estimates' too
        self.save_model(clf, setup.name, source, target, seed, src.train, rec, src.val, val_proba)
        if tgt.train is not None and tgt.test is not None and not same:
            if ev.oracle and self.oracle_of.get(setup.name, True):
                if target not in oracles:
                    oclf, ofit = self.fit(setup, tgt.train, seed, tgt.unlabeled.without_labels())
                    oracles[target] = {**self.score(oclf, tgt.test, (setup.name, target, "oracle"), seed), "fit": ofit}
                rec["oracle"] = oracles[target]
            if ev.target_only:
                rec["target_only"] = self.target_curve(setup, target, tgt, seed, k)
        rec["label_free"] = self.label_free(clf, src, tgt, k, same, val_proba)
        self.records.append(rec)
        logger.info("%s %s->%s seed %d: in %.3f cross %s", setup.name, source, target, seed,
                    rec["in_domain"]["accuracy"], rec["cross_domain"].get("accuracy", "n/a"))

    # -- trust: label-free estimates and the target-only curve --------------------------------

    def label_free(self, clf: Any, src: DomainSplit, tgt: DomainSplit, k: tuple[str, ...], same: bool,
                   val_proba: Any) -> dict[str, Any]:
        """COT, COTT, ATC, DoC, AC and their average as estimates of the target accuracy of ``clf`` (no
        target label is read): temperature and thresholds fitted on the source validation rows,
        applied to the target test texts (all texts of an unlabeled target). The target
        probabilities are the very ones the cross-domain score used (same rows, same path);
        ``val_proba`` are ``clf``'s on the source validation rows (None when there are none)."""
        if src.val is None:
            return {"missing": "source_val_size: 0, so no source validation rows: no label-free estimate"}
        y_val = clf.label_map.encode(src.val.labels or [])
        if same or tgt.test is not None:  # the probabilities just scored, on the same rows
            key = (*k, "in_domain" if same else "cross_domain")  # a name: mypy reads `d[(*k, ...)]` as 3.11-only
            proba, rows = self.scores[key][-1].proba, "test split"
        else:
            proba, rows = self.proba(clf, tgt.unlabeled), "all rows (no labels)"
        return {**label_free_estimates(val_proba, y_val, proba), "target_rows": rows}

    def target_curve(self, setup: SetupConfig, target: str, tgt: DomainSplit, seed: int, k: tuple[str, ...]) -> dict[str, Any]:
        """This seed's target-only curve of ``setup``'s frozen twin (trained once per twin,
        target and seed); its largest budget is also scored in full as the ``target_only`` block."""
        base = self.frozen_baseline(setup)
        ckey = (json.dumps(base.model_dump(exclude={"name"}), sort_keys=True, default=str), target, seed)
        if ckey not in self.curves:
            assert base.strategy is not None
            twin = f"{setup.name.rsplit('+', 1)[0]} frozen + {base.strategy.head.name} head"
            self.curves[ckey] = {**self._train_curve(base, tgt, seed), "twin": twin}
        curve = self.curves[ckey]
        self.scores.setdefault((*k, "target_only"), []).append(curve["scored"])
        return {"domain": target, **curve["scored"].metrics, "label_budget": curve["pool"], "curve": curve["curve"],
                "twin": curve["twin"]}

    def _train_curve(self, base: SetupConfig, tgt: DomainSplit, seed: int) -> dict[str, Any]:
        assert tgt.train is not None and tgt.test is not None
        pool, ev = tgt.train, self.config.evaluation
        n_classes = len(set(pool.labels or []))
        name, fits = tgt.test.domain, [b for b in ev.label_budgets if b == "all" or n_classes <= int(b) <= len(pool)]
        below = sorted(int(b) for b in ev.label_budgets if b != "all" and int(b) < n_classes)
        above = sorted(int(b) for b in ev.label_budgets if b != "all" and int(b) > len(pool))
        if below:
            self._note(f"target-only curve on {name!r}: label budgets {below} are below its {n_classes} classes: left out")
        if above:  # the curve then ends at the whole train split
            self._note(f"target-only curve on {name!r}: label budgets {above} exceed its {len(pool)} train rows: "
                       f"the curve ends at all {len(pool)}")
            fits.append("all")
        budgets, _ = resolve_budgets(fits or ["all"], len(pool), n_classes)
        curve: dict[int, float] = {}
        scored: Scored | None = None
        for budget, sample in budget_samples(pool, budgets, seed).items():
            bclf, _ = self.fit(base, sample, seed, None, (tgt.test,))
            proba = self.proba(bclf, tgt.test)
            y = bclf.label_map.encode(tgt.test.labels or [])
            curve[budget] = float((proba.argmax(axis=1) == y).mean())
            if budget == budgets[-1]:
                scored = score_predictions(y, proba, bclf.labels, self.n_boot, self.ece_bins, seed)
        assert scored is not None
        logger.info("target-only curve %s on %s seed %d: %s", base.name, tgt.test.domain, seed,
                    ", ".join(f"{b}: {a:.3f}" for b, a in curve.items()))
        return {"curve": curve, "scored": scored, "pool": budgets[-1]}

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def run_crossdomain(config: CrossDomainConfig | str | Path, overrides: list[str] | tuple[str, ...] = ()) -> CrossDomainResult:
    """Runs a cross-domain config end to end and writes the run directory.

    Example:
        >>> res = run_crossdomain("configs/movies_to_products.yaml", ["seeds=[0]"])  # doctest: +SKIP
        >>> (res.run_dir / "report.md").exists()  # doctest: +SKIP
        True
    """
    from textransfer.experiments.crossdomain.matrix import summarise
    from textransfer.experiments.crossdomain.report import write_report

    config = resolve_config(CrossDomainConfig, config, overrides)
    t0 = time.perf_counter()
    data, label_map = load_domains(config)  # checked before the run directory is touched
    check_buildable(config.setups())
    with RunDirectory(config) as run_dir, tracking.tracked(config, "crossdomain") as tracker:
        exp = CrossDomainRun(config)
        exp.tracker = tracker
        if config.save_models:
            exp.model_dir = run_dir.path / "models"
        for seed in config.seeds:
            exp.run_seed(seed, data)
        metrics = summarise(config, exp, data, label_map)
        metrics["seconds"] = round(time.perf_counter() - t0, 1)
        if exp.cache is not None:
            log_cache_summary(f"crossdomain {config.name}", exp.cache.hits, exp.cache.misses, exp.cache.rejected)
        if tracker is not None:
            tracker.log(final_row_metrics(metrics["rows"]))
        with run_dir.outputs() as out:
            for (setup, folder), fits in exp.histories.items():
                tracking.write_history(out / "models" / setup / folder, fits, title=f"{setup}: {folder.replace('_to_', ' → ')}")
            write_json(out / "metrics.json", metrics)
            write_report(out, config, metrics, exp.scores)
    return CrossDomainResult(run_dir=run_dir.path, metrics=metrics, scores=exp.scores)


def final_row_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The tracked final numbers of a cross-domain run: per row (setup, source -> target) the seed
    means of accuracy, macro-F1 and ECE of each evaluation, and the row's gaps and gains."""
    out: dict[str, float] = {}
    for r in rows:
        prefix = f"{r['setup']}/{r['source']}_to_{r['target']}/"
        for part in ("in_domain", "cross_domain", "oracle", "target_only"):
            ev = r.get(part)
            for key in ("accuracy", "macro_f1", "ece"):
                value = ev.get(key) if isinstance(ev, dict) else None
                if isinstance(value, dict) and isinstance(value.get("mean"), (int, float)):
                    out[f"{prefix}{part}/{key}"] = float(value["mean"])
        for key, value in r.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{prefix}{key}"] = float(value)
    return out
