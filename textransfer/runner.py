"""RunConfig -> build components, fit, evaluate, save model + metrics + report + resolved config.

Output of a run named ``NAME`` (``output_dir/NAME/``)::

    config.resolved.yaml   the config after defaults and overrides
    metrics.json           {"name", "seed", "notes", "setups": {setup: metrics on the in-domain
                           test split and on each eval set}}
    report.md              the same as tables, with the data warnings (notes) on top
    model/                 the trained model (one setup), or <setup>/model/ for several setups
    checkpoints/           epoch checkpoints of fine-tuning (or <setup>/checkpoints/)

The config, the data and the components are checked before the folder is touched; the folder is
locked while the run goes on, and the three files above are renamed into place together at the
end (:class:`textransfer.config.RunDirectory`). A rerun never deletes the checkpoints of an
interrupted run unless told to: ``resume=True`` continues it (after checking that data, encoder,
strategy and training settings are those it was trained with), ``fresh=True`` starts over.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textransfer.classifier import Classifier
from textransfer.config import RunConfig, RunDirectory, SetupConfig, is_main_process, load_config
from textransfer.data import LabeledTexts, stratified_split
from textransfer.data import load as load_data
from textransfer.data.sources import DataSource
from textransfer.data.splits import shared_inputs
from textransfer.encoders.base import ENCODERS, Encoder
from textransfer.encoders.cache import FeatureCache, encode_cached
from textransfer.evaluation.metrics import classification_metrics, majority_baseline
from textransfer.heads.base import HEADS, Head
from textransfer.strategies.base import STRATEGIES, Strategy
from textransfer.training import checkpoint as ckpt
from textransfer.training.loop import training_args

__all__ = ["RunResult", "Splits", "is_main_process", "run", "summary_table"]

logger = logging.getLogger("textransfer.runner")


@dataclass
class Splits:
    """The data of a run: training, optional validation, in-domain test and named eval sets."""

    train: LabeledTexts
    val: LabeledTexts | None
    test: LabeledTexts | None
    evals: dict[str, LabeledTexts] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # data warnings for the log and report.md


@dataclass
class RunResult:
    """What :func:`run` returns: the run directory and metrics per setup."""

    run_dir: Path
    metrics: dict[str, Any]
    classifiers: dict[str, Classifier] = field(default_factory=dict)


def limit_note(where: str, spec: DataSource, data: LabeledTexts) -> str | None:
    """A note when ``spec.limit`` asks for more rows than ``data`` (what was loaded) has."""
    if spec.limit is None or spec.limit <= len(data):
        return None
    return (
        f"{where}: limit {spec.limit} is above the {len(data)} usable rows of {spec.source!r}, "
        f"so all {len(data)} are used"
    )


def data_notes(splits: Splits) -> list[str]:
    """What the user should know about the data before trusting the scores."""
    notes = []
    if splits.test is None:
        scored = [n for n, d in splits.evals.items() if d.labels is not None]
        notes.append(
            "no in-domain test split (data.test_size is 0 and there is no data.test): "
            + (f"the model is scored only on {', '.join(scored)}" if scored else
               "nothing is scored; set data.test_size (e.g. 0.2), data.test or a labeled data.eval set")
        )
    for name, part in (("test", splits.test), ("val", splits.val)):
        if part is None:
            continue
        n = shared_inputs(splits.train, part)
        if n:
            notes.append(
                f"{n} of {len(part)} {name} rows have a text that also appears in the training data "
                f"(duplicate rows in the data): {name} scores are optimistic; remove the duplicates"
            )
    return notes


def load_splits(config: RunConfig) -> Splits:
    """Loads the data sections and makes the seeded, stratified splits; data problems that do
    not stop the run (duplicates across the split, no test split, a limit above the data size)
    are logged as warnings and kept in ``notes``."""
    d = config.data
    notes: list[str | None] = []
    train = load_data(d.train)
    notes.append(limit_note("data.train", d.train, train))
    test = load_data(d.test) if d.test is not None else None
    if test is not None and d.test is not None:
        notes.append(limit_note("data.test", d.test, test))
    if test is None and d.test_size > 0:
        train, test = stratified_split(train, d.test_size, seed=config.seed)
        test.domain = train.domain
    val = load_data(d.val) if d.val is not None else None
    if val is not None and d.val is not None:
        notes.append(limit_note("data.val", d.val, val))
    if val is None and d.val_size > 0:
        train, val = stratified_split(train, d.val_size, seed=config.seed + 1)
    evals = {}
    for name, spec in d.eval.items():
        evals[name] = load_data(spec)
        notes.append(limit_note(f"data.eval.{name}", spec, evals[name]))
    splits = Splits(train=train, val=val, test=test, evals=evals)
    splits.notes = [n for n in notes if n is not None] + data_notes(splits)
    for note in splits.notes:
        logger.warning("%s", note)
    return splits


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
    strategy.training = training_args({"seed": seed, **(setup.training or {})})
    strategy.batch_size = batch_size
    return encoder, head, strategy


def check_buildable(setups: list[SetupConfig], batch_size: int) -> None:
    """Builds (and drops) the components of each setup, so that a constructor's range check
    fails before any output is written; cheap, as encoders load their weights on first use."""
    for setup in setups:
        build_components(setup, 0, None, batch_size)


def _run_cache(config: RunConfig) -> FeatureCache | None:
    return FeatureCache(Path(config.cache_dir).expanduser()) if config.cache_dir else None


def checkpoint_fingerprints(setup: SetupConfig, splits: Splits, encoder: Encoder, strategy: Strategy) -> dict[str, Any]:
    """What a checkpoint must have been trained on for ``--resume`` to continue it."""
    assert setup.strategy is not None
    skip = {"progress", "keep_checkpoints"}  # change nothing about the trained model
    return {
        "data": {"train": splits.train.fingerprint(), "val": None if splits.val is None else splits.val.fingerprint()},
        "encoder": {"name": encoder.name, **encoder.config()},
        "strategy": {"name": setup.strategy.name, "head": setup.strategy.head.model_dump(mode="json"), **setup.strategy.params()},
        "training": {k: v for k, v in strategy.training.to_dict().items() if k not in skip},
    }


def prepare_checkpoints(
    plans: list[tuple[SetupConfig, Path, tuple[Encoder, Head, Strategy]]],
    splits: Splits,
    resume: bool,
    fresh: bool,
) -> None:
    """Checks the checkpoints of every setup before any is trained (``fresh``: deletes them).

    Without ``resume``/``fresh``, the checkpoints of an interrupted run are an error (they are
    never deleted silently); with ``resume`` they must match the data and settings of this run;
    ``fresh`` deletes them.

    Raises:
        CheckpointError: naming the folder and the flag to use.
    """
    roots = []
    for setup, out_dir, (encoder, _, strategy) in plans:
        if not hasattr(strategy, "checkpoint_dir"):
            continue
        root = out_dir / "checkpoints"
        if resume:
            ckpt.check_fingerprints(root, checkpoint_fingerprints(setup, splits, encoder, strategy))
        elif not fresh and (found := ckpt.unfinished(root)) is not None:
            path, state = found
            raise ckpt.CheckpointError(
                f"{root} holds the checkpoints of an interrupted run ({path.name}: {state}); continue it "
                "with --resume, or start over with --fresh (deletes them)"
            )
        roots.append(root)
    if fresh and is_main_process():
        for root in roots:
            if n := ckpt.clear(root):
                logger.info("--fresh: deleted %d checkpoint(s) in %s", n, root)


def run_setup(
    setup: SetupConfig,
    splits: Splits,
    config: RunConfig,
    out_dir: Path,
    resume: bool = False,
    components: tuple[Encoder, Head, Strategy] | None = None,
) -> tuple[Classifier, dict[str, Any]]:
    """Builds (unless ``components`` are given), trains, evaluates and saves one setup into
    ``out_dir``.

    Strategies that checkpoint (they have a ``checkpoint_dir`` attribute) write epoch
    checkpoints into ``out_dir/checkpoints``; ``resume`` continues from the newest one.
    """
    if components is None:
        components = build_components(setup, config.seed, _run_cache(config), config.batch_size)
    encoder, head, strategy = components
    cache = strategy.cache
    if hasattr(strategy, "checkpoint_dir"):  # fine-tuning: epoch checkpoints, --resume
        strategy.checkpoint_dir = out_dir / "checkpoints"
        strategy.resume = resume

    logger.info("setup %s: %s + %s (%s)", setup.name, encoder.name, head.name, strategy.name)
    t0 = time.perf_counter()
    if hasattr(strategy, "checkpoint_dir"):
        # Each checkpoint records what it is trained on, for --resume to check.
        with ckpt.recording(strategy.checkpoint_dir, checkpoint_fingerprints(setup, splits, encoder, strategy)):
            clf = strategy.fit(encoder, head, splits.train, val=splits.val)
    else:
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
    """Writes ``report.md`` into ``run_dir``: the data, its warnings, then the scores."""
    lines = [f"# Run `{config.name}`", ""]
    lines.append(f"Training data: `{splits.train.domain}`, {len(splits.train)} rows {splits.train.label_counts()}.")
    if splits.test is not None:
        lines.append(f"In-domain test split (`test`): {len(splits.test)} rows, seed {config.seed}.")
    for name, data in splits.evals.items():
        lines.append(f"Evaluation set `{name}`: domain `{data.domain}`, {len(data)} rows {data.label_counts()}.")
    if splits.notes:
        lines += ["", "## Warnings", "", *(f"- {note}" for note in splits.notes)]
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
    config: RunConfig | str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = False,
    fresh: bool = False,
) -> RunResult:
    """Runs a config end to end and writes the run directory.

    ``resume=True`` continues interrupted fine-tuning from the newest epoch checkpoint under the
    run directory (same config and seed give the same final model as an uninterrupted run);
    ``fresh=True`` deletes such checkpoints and starts over. Without either, a run directory
    holding the checkpoints of an interrupted run is an error (nothing is deleted).

    Raises:
        ConfigError, ValueError, FileNotFoundError: a bad config, unreadable data or a bad
            output path, before anything is written.
        RunDirectoryLocked: another process is running with the same run directory.
        CheckpointError: interrupted checkpoints without ``resume``/``fresh``, or checkpoints
            of other data or settings with ``resume``.

    Example:
        >>> result = textransfer.run("configs/movies_frozen.yaml", ["strategy.head=mlp"])  # doctest: +SKIP
        >>> result.metrics["movies_frozen"]["eval"]["test"]["accuracy"]  # doctest: +SKIP
    """
    if resume and fresh:
        raise ValueError(
            "--resume and --fresh exclude each other: --resume continues an interrupted run, "
            "--fresh deletes its checkpoints and starts over; give one"
        )
    if not isinstance(config, RunConfig):
        config = load_config(config, overrides)
    elif overrides:
        config = load_config(config.model_dump(mode="json"), overrides)
    # Everything that can be checked before the run directory is touched: the data is readable,
    # the components build.
    splits = load_splits(config)
    setups = config.resolved_setups()
    components = {s.name: build_components(s, config.seed, _run_cache(config), config.batch_size) for s in setups}
    main = is_main_process()
    with RunDirectory(config) as run_dir:
        out_dirs = {s.name: run_dir.path if len(setups) == 1 else run_dir.path / s.name for s in setups}
        prepare_checkpoints([(s, out_dirs[s.name], components[s.name]) for s in setups], splits, resume, fresh)
        metrics: dict[str, Any] = {}
        classifiers: dict[str, Classifier] = {}
        for setup in setups:
            if main:
                out_dirs[setup.name].mkdir(parents=True, exist_ok=True)
            clf, res = run_setup(setup, splits, config, out_dirs[setup.name], resume=resume, components=components[setup.name])
            metrics[setup.name] = res
            classifiers[setup.name] = clf
        with run_dir.outputs() as out:
            if len(setups) > 1:
                for name, res in metrics.items():
                    (out / name).mkdir(exist_ok=True)
                    (out / name / "metrics.json").write_text(json.dumps(res, indent=2, default=str))
            payload = {"name": config.name, "seed": config.seed, "notes": splits.notes, "setups": metrics}
            (out / "metrics.json").write_text(json.dumps(payload, indent=2, default=str))
            write_report(out, config, splits, metrics)
    return RunResult(run_dir=run_dir.path, metrics=metrics, classifiers=classifiers)
