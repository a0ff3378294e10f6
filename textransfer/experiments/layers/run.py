"""Layer transferability (Yosinski et al. 2014) for any TrainableEncoder.

For ``k = 0..L`` (``L = len(encoder.layer_groups())``: embeddings/stem, each block, the top),
the bottom ``k`` groups of a *base* encoder are kept and the rest re-initialised
(:func:`textransfer.training.reinit.reinitialise_above`); the network is then trained on the
target sample with those ``k`` groups frozen (**AnB**) or fine-tuned with the rest (**AnB+**).
The base is the pretrained encoder (``base: pretrained``), or, with ``base: source``, network A
trained on a source domain, with the self-transfer control B trained on the target sample itself
(**BnB**, **BnB+**). At ``k = 0`` every variant is the same randomly initialised network, trained
once. Output in ``runs/<name>/``: ``config.resolved.yaml``, ``metrics.json``, ``report.md``,
``samples.json``, ``plots/layer_transfer.png`` and ``bases/seed<N>/{A,B}`` (``base: source``).

Example:
    >>> result = run_layers("configs/vision_layers.yaml")  # doctest: +SKIP
    >>> result.metrics["variants"]["AnB"]["2"]["mean"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textransfer.classifier import Classifier
from textransfer.config import RunDirectory, SetupConfig, resolve_config
from textransfer.data import LabeledTexts
from textransfer.data import load as load_data
from textransfer.data.budgets import budget_samples, resolve_budgets
from textransfer.encoders.base import ENCODERS, Encoder
from textransfer.evaluation.curves import curve_stats
from textransfer.experiments._kernel import (
    analysis_limit_notes,
    check_buildable,
    fit_setup,
    ids_json,
    process_folder,
    score,
    split_target,
    write_json,
)
from textransfer.experiments.layers.config import LayersConfig
from textransfer.strategies.finetune import FinetuneStrategy
from textransfer.training.args import TrainingArgs

__all__ = ["BottomFrozenFinetune", "LayersResult", "LayersRun", "run_layers"]

logger = logging.getLogger("textransfer.experiments.layers")


class BottomFrozenFinetune(FinetuneStrategy):
    """``finetune`` with the bottom ``frozen_groups`` layer groups fixed, counting every group
    (embeddings/stem and top included, unlike ``freeze_bottom``, which counts blocks only)."""

    def __init__(self, frozen_groups: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frozen_groups = int(frozen_groups)

    def prepare(
        self, encoder: Encoder, head: Any, num_classes: int, probe: list[Any], training: TrainingArgs | None = None
    ) -> tuple[Any, Any]:
        model, plan = super().prepare(encoder, head, num_classes, probe, training)
        plan.fixed |= set(range(self.frozen_groups))
        plan.apply(None)
        return model, plan


@dataclass
class LayersResult:
    """What :func:`run_layers` returns: the run directory and metrics.json's content."""

    run_dir: Path
    metrics: dict[str, Any]


class LayersRun:
    """Runs a :class:`LayersConfig` seed by seed (see :func:`run_layers`)."""

    def __init__(self, config: LayersConfig, run_dir: Path) -> None:
        self.config, self.run_dir = config, run_dir
        self.records: list[dict[str, Any]] = []
        self.bases: list[dict[str, Any]] = []
        self.samples: dict[str, list[Any]] = {}
        self.notes: list[str] = []
        self.groups: list[str] = []

    def base_encoder(self, base_dir: Path | None) -> Encoder:
        """A fresh copy of the base encoder: pretrained (None) or loaded from a saved base model."""
        if base_dir is None:
            enc = self.config.encoder
            return ENCODERS.create(enc.name, **enc.params())
        return Classifier.load(base_dir).encoder

    def fit(self, setup: SetupConfig, train: LabeledTexts, seed: int, **kwargs: Any) -> tuple[Classifier, dict[str, Any]]:
        """Trains ``setup`` on ``train`` (:func:`~textransfer.experiments._kernel.fit_setup`, no
        feature cache: every encoder here is trained); returns the classifier and its fit info."""
        fit = fit_setup(setup, train, seed=seed, cache=None, batch_size=self.config.batch_size, **kwargs)
        return fit.classifier, {**fit.info_without_history(), "epochs": fit.training.epochs}

    def score(self, clf: Classifier, test: LabeledTexts) -> dict[str, Any]:
        """Accuracy, macro-F1 and rows of ``clf`` on ``test``."""
        m = score(clf, test, None, self.config.batch_size).metrics
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}

    def train_base(
        self, name: str, data: LabeledTexts, seed: int, test: LabeledTexts | None
    ) -> Path:
        cfg = self.config
        clf, info = self.fit(cfg.base_setup(), data, seed)
        path = clf.save(self.run_dir / "bases" / f"seed{seed}" / name)
        entry = {"base": name, "seed": seed, "domain": data.domain, "train_rows": len(data), **info}
        if test is not None:
            entry.update(self.score(clf, test))
        self.bases.append(entry)
        return path

    def run_seed(self, seed: int, target: LabeledTexts, source: LabeledTexts | None) -> None:
        from textransfer.training.reinit import check_k, reinitialise_above

        cfg = self.config
        pool, test = split_target(target, cfg.test_size, cfg.split_seed_of(seed))
        sizes, notes = resolve_budgets([cfg.budget], len(pool), len(set(pool.labels or [])))
        self.notes += [n for n in notes if n not in self.notes]
        train = budget_samples(pool, sizes, seed, cfg.balance)[sizes[0]]
        self.samples[str(seed)] = ids_json(train.ids)
        bases: dict[str, Path | None] = {"A": None}
        if cfg.base == "source":
            assert source is not None
            bases = {
                "A": self.train_base("A", source, seed, None),
                "B": self.train_base("B", train, seed, test),
            }
        groups = self.base_encoder(bases["A"]).layer_groups()  # type: ignore[attr-defined]
        self.groups = [name for name, _ in groups]
        ks = cfg.ks if cfg.ks is not None else list(range(len(groups) + 1))
        for k in ks:
            check_k(k, groups)
        variants = [
            (f"{b}nB{'+' if plus else ''}", b, plus) for b in bases for plus in (False, True)
        ]
        for k in sorted(set(ks)):
            shared: dict[str, Any] | None = None
            for variant, base, plus in variants:
                if k == 0 and shared is not None:  # all re-initialised: the same network for all
                    self.records.append(
                        {**shared, "variant": variant, "same_as": shared["variant"]}
                    )
                    continue
                enc = self.base_encoder(bases[base])
                reset = reinitialise_above(enc, k, seed=seed)
                strategy = BottomFrozenFinetune(
                    frozen_groups=0 if plus else k, **cfg.strategy.params()
                )
                clf, info = self.fit(cfg.setup(), train, seed, encoder=enc, strategy=strategy)
                rec = {
                    "variant": variant,
                    "k": k,
                    "seed": seed,
                    "reinitialised": reset,
                    **self.score(clf, test),
                    **info,
                }
                self.records.append(rec)
                shared = shared or rec
                logger.info("%s k=%d seed %d: accuracy %.3f", variant, k, seed, rec["accuracy"])

    def summarise(self) -> dict[str, Any]:
        per: dict[str, dict[int, list[float]]] = {}
        for r in self.records:
            per.setdefault(r["variant"], {}).setdefault(r["k"], []).append(r["accuracy"])
        return {v: {str(k): s for k, s in curve_stats(c).items()} for v, c in per.items()}


def run_layers(
    config: LayersConfig | str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> LayersResult:
    """Runs a layer-transfer config end to end and writes the run directory (module docstring)."""
    config = resolve_config(LayersConfig, config, overrides)
    t0 = time.perf_counter()
    # Data and components are checked before the run directory is touched.
    target = load_data(config.target)
    source = (
        load_data(config.source) if config.base == "source" and config.source is not None else None
    )
    check_buildable([config.setup(), config.base_setup()])
    with RunDirectory(config) as run_dir:
        return _run_layers(config, run_dir, target, source, t0)


def _run_layers(
    config: LayersConfig, run_dir: RunDirectory, target: LabeledTexts, source: LabeledTexts | None, t0: float
) -> LayersResult:
    from textransfer.experiments.layers.report import write_report

    with process_folder(run_dir.path) as models_dir:  # the base networks: written by one process
        run = LayersRun(config, models_dir)
        run.notes += analysis_limit_notes(config, target, source)
        for seed in config.seeds:
            run.run_seed(seed, target, source)
    metrics = {
        "name": config.name,
        "base": config.base,
        "encoder": {"name": config.encoder.name, **config.encoder.params()},
        "target": {"domain": target.domain, "rows": len(target), "labels": target.label_counts()},
        "source": None
        if source is None
        else {"domain": source.domain, "rows": len(source), "labels": source.label_counts()},
        "train_rows": len(next(iter(run.samples.values()))),
        "seeds": config.seeds,
        "groups": run.groups,
        "notes": run.notes,
        "variants": run.summarise(),
        "bases": run.bases,
        "records": run.records,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    with run_dir.outputs() as out:
        (out / "samples.json").write_text(json.dumps(run.samples))
        write_json(out / "metrics.json", metrics)
        write_report(out, metrics)
    return LayersResult(run_dir=run_dir.path, metrics=metrics)
