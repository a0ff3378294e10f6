"""RunConfig -> build components, fit, evaluate, save model + metrics + report + resolved config.

Output of a run named ``NAME`` (``output_dir/NAME/``)::

    config.resolved.yaml   the config after defaults and overrides
    metrics.json           {"name", "seed", "setups": {setup: metrics on the in-domain test split
                           and on each eval set}}
    report.md              the same as tables
    model/                 the trained model (one setup), or <setup>/model/ for several setups
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textransfer.classifier import Classifier
from textransfer.config import RunConfig, SetupConfig, dump_config, load_config
from textransfer.data import LabeledTexts, stratified_split
from textransfer.data import load as load_data
from textransfer.encoders.base import ENCODERS, Encoder
from textransfer.encoders.cache import FeatureCache, encode_cached
from textransfer.evaluation.metrics import classification_metrics, majority_baseline
from textransfer.heads.base import HEADS, Head
from textransfer.strategies.base import STRATEGIES, Strategy
from textransfer.training.loop import TrainingArgs

logger = logging.getLogger("textransfer.runner")


@dataclass
class Splits:
    """The data of a run: training, optional validation, in-domain test and named eval sets."""

    train: LabeledTexts
    val: LabeledTexts | None
    test: LabeledTexts | None
    evals: dict[str, LabeledTexts] = field(default_factory=dict)


@dataclass
class RunResult:
    """What :func:`run` returns: the run directory and metrics per setup."""

    run_dir: Path
    metrics: dict[str, Any]
    classifiers: dict[str, Classifier] = field(default_factory=dict)


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a multi-process launch (torchrun, accelerate launch).

    Every process trains (the loop shards batches across them) and evaluates; only rank 0 writes
    the run directory, so outputs are written once.
    """
    return os.environ.get("RANK", "0") == "0"


def load_splits(config: RunConfig) -> Splits:
    """Loads the data sections and makes the seeded, stratified splits."""
    d = config.data
    train = load_data(d.train)
    test = load_data(d.test) if d.test is not None else None
    if test is None and d.test_size > 0:
        train, test = stratified_split(train, d.test_size, seed=config.seed)
        test.domain = train.domain
    val = load_data(d.val) if d.val is not None else None
    if val is None and d.val_size > 0:
        train, val = stratified_split(train, d.val_size, seed=config.seed + 1)
    evals = {name: load_data(spec) for name, spec in d.eval.items()}
    return Splits(train=train, val=val, test=test, evals=evals)


def evaluate(clf: Classifier, data: LabeledTexts, cache: FeatureCache | None, batch_size: int = 32) -> dict[str, Any]:
    """Metrics of ``clf`` on labeled ``data`` (frozen features come from the cache)."""
    if data.labels is None:
        return {"n": len(data), "note": "no labels: predictions only, nothing to score"}
    y = clf.label_map.encode(data.labels)
    proba = clf.predict_proba_features(encode_cached(clf.encoder, data, cache, batch_size=batch_size))
    metrics = classification_metrics(y, proba.argmax(axis=1), clf.labels)
    metrics["majority_baseline"] = majority_baseline(y)
    return metrics


def build_components(
    setup: SetupConfig, seed: int, cache: FeatureCache | None, batch_size: int
) -> tuple[Encoder, Head, Strategy]:
    """Fresh encoder, head and strategy of ``setup``; the strategy gets cache, seed and batch size."""
    assert setup.encoder is not None and setup.strategy is not None
    encoder = ENCODERS.create(setup.encoder.name, **setup.encoder.params())
    head = HEADS.create(setup.strategy.head.name, **setup.strategy.head.params())
    strategy = STRATEGIES.create(setup.strategy.name, **setup.strategy.params())
    strategy.cache = cache
    strategy.training = TrainingArgs(**{"seed": seed, **(setup.training or {})})
    strategy.batch_size = batch_size
    return encoder, head, strategy


def run_setup(
    setup: SetupConfig, splits: Splits, config: RunConfig, out_dir: Path, resume: bool = False
) -> tuple[Classifier, dict[str, Any]]:
    """Builds, trains, evaluates and saves one setup into ``out_dir``.

    Strategies that checkpoint (they have a ``checkpoint_dir`` attribute) write epoch
    checkpoints into ``out_dir/checkpoints``; ``resume`` continues from the newest one.
    """
    cache = FeatureCache(Path(config.cache_dir).expanduser()) if config.cache_dir else None
    encoder, head, strategy = build_components(setup, config.seed, cache, config.batch_size)
    if hasattr(strategy, "checkpoint_dir"):  # fine-tuning: epoch checkpoints, --resume
        strategy.checkpoint_dir = out_dir / "checkpoints"
        strategy.resume = resume

    logger.info("setup %s: %s + %s (%s)", setup.name, encoder.name, head.name, strategy.name)
    t0 = time.perf_counter()
    clf = strategy.fit(encoder, head, splits.train, val=splits.val)
    fit_s = time.perf_counter() - t0
    results: dict[str, Any] = {
        "encoder": {"name": setup.encoder.name, **setup.encoder.params()},
        "head": {"name": setup.strategy.head.name, **setup.strategy.head.params()},
        "strategy": setup.strategy.name,
        "train": {"domain": splits.train.domain, "n": len(splits.train), "labels": splits.train.label_counts()},
        "fit_seconds": round(fit_s, 2),
        "eval": {},
    }
    t0 = time.perf_counter()
    if splits.test is not None:
        results["eval"]["test"] = {"domain": splits.test.domain, **evaluate(clf, splits.test, cache, config.batch_size)}
    for name, data in splits.evals.items():
        results["eval"][name] = {"domain": data.domain, **evaluate(clf, data, cache, config.batch_size)}
    results["eval_seconds"] = round(time.perf_counter() - t0, 2)
    if cache is not None:
        results["feature_cache"] = {"hits": cache.hits, "misses": cache.misses}
    clf.metrics = {k: {"accuracy": v.get("accuracy"), "macro_f1": v.get("macro_f1")} for k, v in results["eval"].items()}
    if is_main_process():
        clf.save(out_dir / "model")
    return clf, results


def summary_table(metrics: dict[str, Any]) -> str:
    """A markdown table: one row per setup, accuracy / macro-F1 per evaluation set."""
    eval_names: list[str] = []
    for res in metrics.values():
        for name in res["eval"]:
            if name not in eval_names:
                eval_names.append(name)
    header = ["setup", "encoder", "head", "strategy"]
    for name in eval_names:
        header += [f"{name} acc", f"{name} F1"]
    header.append("fit s")
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setup, res in metrics.items():
        cells = [setup, res["encoder"]["name"], res["head"]["name"], res["strategy"]]
        for name in eval_names:
            ev = res["eval"].get(name, {})
            cells += [f"{ev['accuracy']:.3f}" if "accuracy" in ev else "-", f"{ev['macro_f1']:.3f}" if "macro_f1" in ev else "-"]
        cells.append(f"{res['fit_seconds']:.1f}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def write_report(run_dir: Path, config: RunConfig, splits: Splits, metrics: dict[str, Any]) -> None:
    lines = [f"# Run `{config.name}`", ""]
    lines.append(f"Training data: `{splits.train.domain}`, {len(splits.train)} rows {splits.train.label_counts()}.")
    if splits.test is not None:
        lines.append(f"In-domain test split (`test`): {len(splits.test)} rows, seed {config.seed}.")
    for name, data in splits.evals.items():
        lines.append(f"Evaluation set `{name}`: domain `{data.domain}`, {len(data)} rows {data.label_counts()}.")
    lines += ["", "## Accuracy and macro-F1", "", summary_table(metrics), ""]
    for setup, res in metrics.items():
        lines += [f"## {setup}", ""]
        for name, ev in res["eval"].items():
            if "per_class" not in ev:
                lines += [f"- `{name}`: {ev.get('note', 'not scored')}", ""]
                continue
            lines += [
                f"**{name}** ({ev['domain']}, n={ev['n']}): accuracy {ev['accuracy']:.3f}, macro-F1 "
                f"{ev['macro_f1']:.3f}, majority-class baseline {ev['majority_baseline']:.3f}",
                "",
                "| class | precision | recall | F1 | support |",
                "|---|---|---|---|---|",
            ]
            for lab, pc in ev["per_class"].items():
                lines.append(f"| {lab} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['support']} |")
            labels = [str(x) for x in ev["labels"]]
            lines += ["", "Confusion matrix (rows: true, columns: predicted)", ""]
            lines.append("| | " + " | ".join(labels) + " |")
            lines.append("|---|" + "---|" * len(labels))
            for lab, row in zip(labels, ev["confusion_matrix"], strict=True):
                lines.append(f"| {lab} | " + " | ".join(str(c) for c in row) + " |")
            lines.append("")
    (run_dir / "report.md").write_text("\n".join(lines))


def run(
    config: RunConfig | str | Path, overrides: list[str] | tuple[str, ...] = (), resume: bool = False
) -> RunResult:
    """Runs a config end to end and writes the run directory.

    ``resume=True`` continues interrupted fine-tuning from the newest epoch checkpoint under the
    run directory (same config and seed give the same final model as an uninterrupted run).

    Example:
        >>> result = textransfer.run("configs/movies_frozen.yaml", ["strategy.head=mlp"])  # doctest: +SKIP
        >>> result.metrics["movies_frozen"]["eval"]["test"]["accuracy"]  # doctest: +SKIP
    """
    if not isinstance(config, RunConfig):
        config = load_config(config, overrides)
    elif overrides:
        config = load_config(config.model_dump(mode="json"), overrides)
    run_dir = Path(config.output_dir) / config.name
    main = is_main_process()
    run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        (run_dir / "config.resolved.yaml").write_text(dump_config(config))
    splits = load_splits(config)
    setups = config.resolved_setups()
    metrics: dict[str, Any] = {}
    classifiers: dict[str, Classifier] = {}
    for setup in setups:
        out_dir = run_dir if len(setups) == 1 else run_dir / setup.name
        out_dir.mkdir(parents=True, exist_ok=True)
        clf, res = run_setup(setup, splits, config, out_dir, resume=resume)
        metrics[setup.name] = res
        classifiers[setup.name] = clf
        if main and out_dir != run_dir:
            (out_dir / "metrics.json").write_text(json.dumps(res, indent=2, default=str))
    if main:
        payload = {"name": config.name, "seed": config.seed, "setups": metrics}
        (run_dir / "metrics.json").write_text(json.dumps(payload, indent=2, default=str))
        write_report(run_dir, config, splits, metrics)
    return RunResult(run_dir=run_dir, metrics=metrics, classifiers=classifiers)
