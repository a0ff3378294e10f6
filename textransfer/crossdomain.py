"""Cross-domain experiments: train on source domains, score on target domains, explain the gap.

For every setup (encoder x strategy of the grid), every (source, target) pair and every seed::

    in-domain     model trained on the source train split, scored on the source test split
    cross-domain  the same model scored on the target test split
    oracle        the same setup trained on the target train split, scored on the target test split
    target-only   frozen encoder + the same head trained on target labels at the source model's
                  label budget, min(source rows used, target train rows)

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

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textransfer.config import Component, RunDirectory, SetupConfig, StrategyConfig, resolve_config
from textransfer.crossdomain_config import CrossDomainConfig, load_crossdomain_config
from textransfer.data import LabeledTexts, stratified_split, stratified_subsample
from textransfer.data import load as load_data
from textransfer.data.labeled import LabelMap
from textransfer.encoders.base import ENCODERS, Encoder, FittableEncoder
from textransfer.encoders.cache import FeatureCache, encode_cached
from textransfer.evaluation.scoring import Scored, score_predictions
from textransfer.runner import build_components, check_buildable

__all__ = ["CrossDomainConfig", "CrossDomainResult", "load_crossdomain_config", "run_crossdomain"]

logger = logging.getLogger("textransfer.crossdomain")


@dataclass
class DomainSplit:
    """One domain for one seed.

    Attributes:
        full: every row that was loaded.
        train: the labeled train split (None when the domain has no labels).
        test: the held-out labeled test split (None when the domain has no labels).
        unlabeled: what adaptation may see: the train split's texts without labels, or all texts
            of an unlabeled domain.
    """

    full: LabeledTexts
    train: LabeledTexts | None
    test: LabeledTexts | None
    unlabeled: LabeledTexts


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


def split_domain(name: str, data: LabeledTexts, test_size: float, seed: int) -> DomainSplit:
    """Stratified train/test split of a labeled domain; an unlabeled one is all ``unlabeled``."""
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
    return DomainSplit(full=data, train=train, test=test, unlabeled=train.without_labels())


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


class Experiment:
    """Runs the grid of a :class:`CrossDomainConfig`; :func:`run_crossdomain` is the entry point."""

    def __init__(self, config: CrossDomainConfig) -> None:
        self.config = config
        ev = config.evaluation
        self.n_boot, self.ece_bins = ev.n_boot, ev.ece_bins
        self.cache = FeatureCache(Path(config.cache_dir).expanduser()) if config.cache_dir else None
        self.store = FeatureStore(self.cache, config.batch_size)
        self.scores: dict[tuple[str, ...], list[Scored]] = {}
        self.records: list[dict[str, Any]] = []
        self.a_distance: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.full: dict[str, LabeledTexts] = {}  # domain name -> every loaded row (set by run_seed)
        self.model_dir: Path | None = None  # where source-trained models are saved (save_models)
        self.saved: set[Path] = set()
        self.oracle_of = {setup.name: config.strategies[sname].oracle for setup, _, sname in config.grid()}

    # -- building blocks ------------------------------------------------------------------------

    def fit(self, setup: SetupConfig, train: LabeledTexts, seed: int, target_unlabeled: LabeledTexts | None) -> Any:
        """Trains a fresh copy of ``setup``; ``target_unlabeled`` must carry no labels."""
        if target_unlabeled is not None and target_unlabeled.labels is not None:
            raise AssertionError("target labels must never reach training: pass .without_labels()")
        encoder, head, strategy = build_components(setup, seed, self.cache, self.config.batch_size)
        for part in (train, target_unlabeled):  # subsets of a domain: read, not encoded again
            if strategy.encodes_frozen_features and part is not None and part.domain in self.full:
                self.store.warm(encoder, self.full[part.domain], part)
        t0 = time.perf_counter()
        clf = strategy.fit(encoder, head, train, val=None, target_unlabeled=target_unlabeled)
        info = dict(getattr(strategy, "last_fit_info", {}) or {})
        info.setdefault("train_rows", len(train))
        info["fit_seconds"] = round(time.perf_counter() - t0, 2)
        return clf, info

    def score(self, clf: Any, data: LabeledTexts, key: tuple[str, ...], seed: int) -> dict[str, Any]:
        """Scores ``clf`` on labeled ``data`` and keeps the predictions under ``key``."""
        feats = encode_cached(clf.encoder, data, self.cache, self.config.batch_size)
        proba = clf.predict_proba_features(feats)
        scored = score_predictions(
            clf.label_map.encode(data.labels or []), proba, clf.labels, self.n_boot, self.ece_bins, seed
        )
        self.scores.setdefault(key, []).append(scored)
        return {"domain": data.domain, **scored.metrics}

    def save_model(self, clf: Any, setup: str, source: str, target: str, seed: int) -> None:
        """Saves a source-trained model once per (setup, pair): on the first seed it runs on."""
        if self.model_dir is None:
            return
        path = self.model_dir / setup / f"{source}_to_{target}"
        if path in self.saved:
            return
        clf.save(path)  # replaces what an earlier run of the same config left there
        self.saved.add(path)
        logger.info("saved %s (trained on %s, seed %d) to %s", setup, source, seed, path)

    def frozen_baseline(self, setup: SetupConfig) -> SetupConfig:
        """The same encoder and head with the frozen strategy (the target-only baseline).

        Its training settings (torch heads) are those of the setup itself when it is frozen, else
        of a frozen grid strategy with the same head, else the top-level ``training``: an
        adaptation's own settings (e.g. DANN's encoder learning rate) are not meant for a head.
        """
        assert setup.strategy is not None
        training = setup.training
        if setup.strategy.name != "frozen":
            same_head = [
                s for s in self.config.strategies.values()
                if s.name == "frozen" and s.head.model_dump() == setup.strategy.head.model_dump()
            ]
            training = {**self.config.training, **((same_head[0].training or {}) if same_head else {})}
        return SetupConfig(
            name=f"{setup.name}:target-only",
            encoder=setup.encoder,
            strategy=StrategyConfig(name="frozen", head=setup.strategy.head),
            training=training,
        )

    # -- the grid -----------------------------------------------------------------------------

    def run_seed(self, seed: int, data: dict[str, LabeledTexts]) -> None:
        cfg = self.config
        split_seed = seed if cfg.split_seed is None else cfg.split_seed
        doms = {name: split_domain(name, d, cfg.test_size, split_seed) for name, d in data.items()}
        self.full = {d.domain: d for d in data.values()}
        measured = cfg.evaluation.a_distance_encoders
        for ename, enc in cfg.encoders.items():
            if measured is None or ename in measured:
                self.divergence(ename, enc, doms, seed)
        for setup, _, sname in cfg.grid():
            if seed not in cfg.seeds_of(sname):
                continue
            oracles: dict[str, dict[str, Any]] = {}
            for source, target in cfg.pairs():
                self.run_pair(setup, source, target, doms, seed, oracles)

    def divergence(self, ename: str, enc: Component, doms: dict[str, DomainSplit], seed: int) -> None:
        """Proxy A-distance of each (source, target) pair on this encoder's frozen features."""
        from textransfer.evaluation.divergence import proxy_a_distance

        for source, target in self.config.pairs():
            if self.config.same_domain(source, target):
                continue
            src, tgt = doms[source], doms[target]
            encoder = ENCODERS.create(enc.name, **enc.params())
            if isinstance(encoder, FittableEncoder):
                assert src.train is not None
                encoder.fit(src.train.texts)
            tgt_rows = tgt.test if tgt.test is not None else tgt.unlabeled
            self.store.warm(encoder, src.full, src.train, src.test, src.unlabeled)
            self.store.warm(encoder, tgt.full, tgt.train, tgt.test, tgt.unlabeled)
            xs = encode_cached(encoder, src.test, self.cache, self.config.batch_size)
            xt = encode_cached(encoder, tgt_rows, self.cache, self.config.batch_size)
            pad = proxy_a_distance(xs, xt, seed=seed, max_rows=self.config.evaluation.a_distance_rows)
            self.a_distance.append({"encoder": ename, "source": source, "target": target, "seed": seed, **pad})

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
        clf, rec["fit"] = self.fit(setup, src.train, seed, tgt.unlabeled.without_labels())
        self.save_model(clf, setup.name, source, target, seed)
        rec["in_domain"] = self.score(clf, src.test, (*k, "in_domain"), seed)
        if same:
            rec["cross_domain"] = rec["in_domain"]
            self.scores.setdefault((*k, "cross_domain"), []).append(self.scores[(*k, "in_domain")][-1])
        elif tgt.test is None:
            rec["cross_domain"] = {"missing": f"target {target!r} has no labels: cross-domain accuracy, oracle, "
                                   "gap and negative transfer need a labeled target (set `label_column`)"}
        else:
            rec["cross_domain"] = self.score(clf, tgt.test, (*k, "cross_domain"), seed)
        if tgt.train is not None and tgt.test is not None and not same:
            if ev.oracle and self.oracle_of.get(setup.name, True):
                if target not in oracles:
                    oclf, ofit = self.fit(setup, tgt.train, seed, tgt.unlabeled.without_labels())
                    oracles[target] = {**self.score(oclf, tgt.test, (setup.name, target, "oracle"), seed), "fit": ofit}
                rec["oracle"] = oracles[target]
            if ev.target_only:
                budget = min(int(rec["fit"]["train_rows"]), len(tgt.train))
                rows = stratified_subsample(tgt.train, budget, seed=seed)
                base = self.frozen_baseline(setup)
                bclf, _ = self.fit(base, rows, seed, None)
                rec["target_only"] = {**self.score(bclf, tgt.test, (*k, "target_only"), seed), "label_budget": budget}
        self.records.append(rec)
        logger.info("%s %s->%s seed %d: in %.3f cross %s", setup.name, source, target, seed,
                    rec["in_domain"]["accuracy"], rec["cross_domain"].get("accuracy", "n/a"))


def run_crossdomain(config: CrossDomainConfig | str | Path, overrides: list[str] | tuple[str, ...] = ()) -> CrossDomainResult:
    """Runs a cross-domain config end to end and writes the run directory.

    Example:
        >>> res = run_crossdomain("configs/movies_to_products.yaml", ["seeds=[0]"])  # doctest: +SKIP
        >>> (res.run_dir / "report.md").exists()  # doctest: +SKIP
        True
    """
    from textransfer.evaluation.matrix import summarise
    from textransfer.evaluation.report import write_report

    config = resolve_config(CrossDomainConfig, config, overrides)
    t0 = time.perf_counter()
    data, label_map = load_domains(config)  # checked before the run directory is touched
    check_buildable(config.setups(), config.batch_size)
    with RunDirectory(config) as run_dir:
        exp = Experiment(config)
        if config.save_models:
            exp.model_dir = run_dir.path / "models"
        for seed in config.seeds:
            exp.run_seed(seed, data)
        metrics = summarise(config, exp, data, label_map)
        metrics["seconds"] = round(time.perf_counter() - t0, 1)
        with run_dir.outputs() as out:
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
            write_report(out, config, metrics, exp.scores)
    return CrossDomainResult(run_dir=run_dir.path, metrics=metrics, scores=exp.scores)
