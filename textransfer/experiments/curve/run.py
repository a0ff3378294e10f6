"""Learning curves: target accuracy against the number of labeled target examples.

For every seed the target is split into a labeled *pool* and a *test* split; each budget's
sample is a nested, class-balanced prefix of one seeded order of the pool
(:mod:`textransfer.data.budgets`), and every setup is trained on each sample and scored on the
test split. Budget 0 is scored by zero-shot setups and by the source model of two-step setups.
Output in ``runs/<name>/``: ``config.resolved.yaml``, ``metrics.json``, ``report.md``,
``samples.json`` (the row ids of every sample, per seed), ``plots/learning_curve.png`` and
``source_models/<setup>/seed<N>/`` (step 1 of two-step setups); for setups trained by the
training loop, ``models/<setup>/history.json`` and ``models/<setup>/plots/training.png`` (every
seed and budget). With ``tracking:`` the config, training losses, epochs and each setup's curve
(accuracy against budget) go to the trackers (:mod:`textransfer.tracking`).

Example:
    >>> result = run_curve("configs/curve_movies_products.yaml", ["seeds=[0]"])  # doctest: +SKIP
    >>> result.metrics["setups"]["minilm-frozen"]["benefits"]["asymptote"]["gain"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textransfer import tracking
from textransfer.classifier import Classifier
from textransfer.config import RunDirectory, SetupConfig, resolve_config
from textransfer.data import LabeledTexts
from textransfer.data import load as load_data
from textransfer.data.budgets import budget_samples, resolve_budgets
from textransfer.encoders.cache import FeatureCache, log_cache_summary
from textransfer.evaluation.curves import curve_stats, transfer_benefits
from textransfer.experiments._kernel import (
    FeatureStore,
    SetupFit,
    SharedEncoders,
    analysis_limit_notes,
    check_buildable,
    covers,
    fit_setup,
    ids_json,
    process_folder,
    run_cache,
    score,
    split_target,
    write_json,
)
from textransfer.experiments.curve.config import CurveConfig

__all__ = ["CurveResult", "CurveRun", "run_curve"]

logger = logging.getLogger("textransfer.experiments.curve")

DEFINITIONS = {
    "start": "accuracy at the setup's smallest budget (0 for zero-shot and two-step setups) minus the "
    "baseline's at its smallest budget",
    "area": "area under the mean curve over log(budget), divided by the log range (positive budgets both "
    "have), minus the baseline's: a faster-rising curve has a larger area",
    "asymptote": "accuracy at the largest budget (all labels), minus the baseline's",
    "matches_baseline_at": "smallest budget at which the setup's mean accuracy reaches the baseline's at the "
    "baseline's largest budget (all labels, unless the run's budgets stop earlier)",
    "negative_transfer": "benefits whose gain is negative (the transfer setup is worse than no transfer there)",
}


@dataclass
class CurveResult:
    """What :func:`run_curve` returns: the run directory and metrics.json's content."""

    run_dir: Path
    metrics: dict[str, Any]


class CurveRun:
    """Runs the setups of a :class:`CurveConfig` over seeds and budgets (see :func:`run_curve`)."""

    def __init__(self, config: CurveConfig, run_dir: Path, cache: FeatureCache) -> None:
        self.config, self.run_dir, self.cache = config, run_dir, cache
        self.store = FeatureStore(cache, config.batch_size)
        self.records: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.samples: dict[str, dict[str, list[Any]]] = {}
        self.unlabeled: LabeledTexts | None = None  # target texts for adaptation strategies (set by run_seed)
        self.pool_size = 0
        self.majority: list[float] = []  # majority-class accuracy of each seed's test split
        # Frozen encoders are loaded once per run and shared by every fit (fine-tuned ones never).
        self.encoders = SharedEncoders()
        self.tracker: Any = None  # a textransfer.tracking.Tracker when the config tracks
        self.histories: dict[str, list[dict[str, Any]]] = {}  # setup -> its fits' histories

    def fit(self, step: SetupConfig, train: LabeledTexts, seed: int, **kwargs: Any) -> tuple[Classifier, dict[str, Any]]:
        """Trains ``step`` on ``train`` (:func:`~textransfer.experiments._kernel.fit_setup`) with
        the run's cache, shared frozen encoders and unlabeled target texts; returns the
        classifier and its fit info (without the history, kept in ``history.json``)."""
        fit: SetupFit = fit_setup(step, train, seed=seed, cache=self.cache, batch_size=self.config.batch_size,
                                   target_unlabeled=self.unlabeled, encoders=self.encoders, **kwargs)
        return fit.classifier, {**fit.info_without_history(), "epochs": fit.training.epochs}

    def recording(self, key: str, seed: int, what: str) -> Any:
        """Records the training history of one fit of setup ``key`` (and tracks it)."""
        return tracking.recording(self.tracker, f"{key}/seed{seed}/{what.replace(' ', '_')}/", label=f"seed {seed}, {what}")

    def keep(self, key: str, record: tracking.TrainingRecord) -> None:
        if record.fits:
            self.histories.setdefault(key, []).extend(record.fits)

    def run_seed(self, seed: int, target: LabeledTexts, source: LabeledTexts | None) -> None:
        cfg = self.config
        pool, test = split_target(target, cfg.test_size, cfg.split_seed_of(seed))
        # What adaptation strategies see of the target: the pool's texts, never the test split.
        self.unlabeled = pool.without_labels()
        budgets, notes = resolve_budgets(cfg.budgets, len(pool), len(set(pool.labels or [])))
        self.notes += [n for n in notes if n not in self.notes]
        self.pool_size = len(pool)
        self.majority.append(max(test.label_counts().values()) / len(test))
        samples = budget_samples(pool, budgets, seed, cfg.balance)
        self.samples[str(seed)] = {str(b): ids_json(s.ids) for b, s in samples.items() if b > 0}
        for key in cfg.setups:
            if seed in cfg.seeds_of(key):
                self.run_setup(key, seed, target, pool, test, samples, source)

    def run_setup(
        self,
        key: str,
        seed: int,
        target: LabeledTexts,
        pool: LabeledTexts,
        test: LabeledTexts,
        samples: dict[int, LabeledTexts],
        source: LabeledTexts | None,
    ) -> None:
        cfg, setup = self.config, self.config.setups[key]
        *first, step = cfg.steps(key)
        source_dir = None
        source_clf: Classifier | None = None
        if first:
            assert source is not None
            with self.recording(key, seed, "source") as record:
                source_clf, info = self.fit(first[0], source, seed, warm=lambda enc: self.store.warm(enc, source, source))
            self.keep(key, record)
            source_dir = source_clf.save(self.run_dir / "source_models" / key / f"seed{seed}")
            logger.info(
                "%s seed %d: source step on %s (%d rows) in %.0f s",
                key,
                seed,
                source.domain,
                len(source),
                info["fit_seconds"],
            )
        for budget, sample in samples.items():
            if budget == 0:
                if setup.zero_shot:
                    clf, info = self.fit(step, pool, seed)
                elif source_clf is not None and covers(source_clf, test):
                    clf, info = source_clf, {"train_rows": 0, "source_rows": len(source or [])}
                else:
                    continue
            elif setup.zero_shot:
                continue
            else:
                encoder = Classifier.load(source_dir).encoder if source_dir is not None else None
                with self.recording(key, seed, f"{budget} labels") as record:
                    clf, info = self.fit(
                        step, sample, seed, encoder=encoder, min_steps=setup.min_steps,
                        warm=lambda enc, part=sample: self.store.warm(enc, target, part, test),
                    )
                self.keep(key, record)
            scored = score(clf, test, self.cache, cfg.batch_size).metrics
            res = {"accuracy": scored["accuracy"], "macro_f1": scored["macro_f1"], "n": scored["n"]}
            self.records.append({"setup": key, "seed": seed, "budget": budget, **res, **info})
            logger.info("%s seed %d budget %d: accuracy %.3f", key, seed, budget, res["accuracy"])

    def summarise(self) -> dict[str, Any]:
        cfg = self.config
        curves: dict[str, dict[int, list[float]]] = {k: {} for k in cfg.setups}
        for r in self.records:
            curves[r["setup"]].setdefault(r["budget"], []).append(r["accuracy"])
        base = curves[cfg.baseline]
        setups: dict[str, Any] = {}
        for key, s in cfg.setups.items():
            if not cfg.seeds_of(key):  # skipped in this run (seeds: [])
                continue
            entry: dict[str, Any] = {
                "strategy": s.strategy.name,
                "encoder": s.encoder.name,
                "two_step": s.source is not None,
                "transfer": s.transfer,
                "seeds": cfg.seeds_of(key),
                "curve": {str(b): v for b, v in curve_stats(curves[key]).items()},
            }
            if s.transfer and key != cfg.baseline:
                entry["benefits"] = transfer_benefits(curves[key], base)
            setups[key] = entry
        return {"setups": setups, "curves": curves}


def run_curve(
    config: CurveConfig | str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> CurveResult:
    """Runs a learning-curve config end to end and writes the run directory (module docstring)."""
    config = resolve_config(CurveConfig, config, overrides)
    t0 = time.perf_counter()
    # Data and components are checked before the run directory is touched.
    target = load_data(config.target)
    source = (
        load_data(config.source)
        if config.source and any(s.source and config.seeds_of(k) for k, s in config.setups.items())
        else None
    )
    check_buildable([step for key in config.setups for step in config.steps(key)])
    with RunDirectory(config) as run_dir:
        return _run_curve(config, run_dir, target, source, t0)


def _run_curve(
    config: CurveConfig, run_dir: RunDirectory, target: LabeledTexts, source: LabeledTexts | None, t0: float
) -> CurveResult:
    from textransfer.experiments.curve.report import write_report

    with (run_cache(config.cache_dir) as cache, tracking.tracked(config, "curve") as tracker,
          process_folder(run_dir.path) as models_dir):
        run = CurveRun(config, models_dir, cache)
        run.tracker = tracker
        run.notes += analysis_limit_notes(config, target, source)
        for seed in config.seeds:
            run.run_seed(seed, target, source)
        summary = run.summarise()
        if tracker is not None:  # each setup's mean curve: accuracy against the budget (the step)
            for key, entry in summary["setups"].items():
                for budget, stats in entry["curve"].items():
                    tracker.log({f"{key}/accuracy_mean": stats["mean"]}, step=int(budget))
        log_cache_summary(f"curve {config.name}", cache.hits, cache.misses, cache.rejected)
    metrics = {
        "name": config.name,
        "target": {
            "domain": target.domain,
            "rows": len(target),
            "pool": run.pool_size,
            "test": len(target) - run.pool_size,
            "labels": target.label_counts(),
        },
        "source": None if source is None else {"domain": source.domain, "rows": len(source)},
        "baseline": config.baseline,
        "budgets": sorted({r["budget"] for r in run.records}),
        "balance": config.balance,
        "seeds": config.seeds,
        "notes": run.notes,
        "majority_class": sum(run.majority) / len(run.majority),
        "definitions": DEFINITIONS,
        "setups": summary["setups"],
        "records": run.records,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    with run_dir.outputs() as out:
        for key, fits in run.histories.items():
            tracking.write_history(out / "models" / key, fits, title=f"{config.name}: {key}")
        (out / "samples.json").write_text(json.dumps(run.samples))
        write_json(out / "metrics.json", metrics)
        write_report(out, metrics, summary["curves"])
    return CurveResult(run_dir=run_dir.path, metrics=metrics)
