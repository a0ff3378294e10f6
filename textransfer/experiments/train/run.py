"""RunConfig -> build components, fit, evaluate, save model + metrics + report + resolved config.

Output of a run named ``NAME`` (``output_dir/NAME/``)::

    config.resolved.yaml   the config after defaults and overrides
    metrics.json           {"name", "seed", "notes", "setups": {setup: metrics on the in-domain
                           test split and on each eval set, with 95% bootstrap intervals, ECE
                           and reliability bins}}
    report.md              the same as tables, with the data warnings (notes) on top
    model/                 the trained model (one setup), or <setup>/model/ for several setups
    history.json           per-epoch train/validation loss, validation metric, learning rate and
                           samples/s of each training run (setups trained by the training loop)
    plots/                 confusion.png and reliability.png (labeled eval sets), training.png
                           (loss and validation metric per epoch); <setup>/... for several setups
    checkpoints/           epoch checkpoints of fine-tuning (or <setup>/checkpoints/), deleted
                           once the run has finished unless training.keep_checkpoints_after_run

With ``tracking: {log_with: [tensorboard, mlflow]}`` the config, the training loss per step,
the epoch rows and the final metrics also go to the trackers (:mod:`textransfer.tracking`).

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

from textransfer import tracking
from textransfer.classifier import Classifier
from textransfer.config import RunDirectory, SetupConfig
from textransfer.data import LabeledTexts, stratified_split
from textransfer.data import load as load_data
from textransfer.data.splits import shared_inputs
from textransfer.encoders.base import Encoder
from textransfer.encoders.cache import FeatureCache, log_cache_summary
from textransfer.experiments._kernel import (
    Checkpointing,
    SharedEncoders,
    build_components,
    config_cache,
    fit_setup,
    is_main_process,
    limit_note,
    probabilities,
    saves_checkpoints,
    training_settings,
    write_json,
)
from textransfer.experiments.train.config import RunConfig, load_config
from textransfer.experiments.train.report import setup_folder, summary_table, write_report
from textransfer.heads.base import Head
from textransfer.hub import training_data_record
from textransfer.strategies.base import Strategy
from textransfer.training import checkpoint as ckpt

__all__ = ["RunResult", "Splits", "is_main_process", "load_splits", "run", "summary_table"]

logger = logging.getLogger("textransfer.experiments.train")


@dataclass
class Splits:
    """The data of a run: training, optional validation, in-domain test and named eval sets."""

    train: LabeledTexts
    val: LabeledTexts | None
    test: LabeledTexts | None
    evals: dict[str, LabeledTexts] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # data warnings for the log and report.md
    # Unlabeled target texts (data.unlabeled) for adaptation strategies; never labeled.
    unlabeled: LabeledTexts | None = None


@dataclass
class RunResult:
    """What :func:`run` returns: the run directory and metrics per setup."""

    run_dir: Path
    metrics: dict[str, Any]
    classifiers: dict[str, Classifier] = field(default_factory=dict)


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
    unlabeled = load_data(d.unlabeled).without_labels() if d.unlabeled is not None else None
    if unlabeled is not None and d.unlabeled is not None:
        notes.append(limit_note("data.unlabeled", d.unlabeled, unlabeled))
    splits = Splits(train=train, val=val, test=test, evals=evals, unlabeled=unlabeled)
    splits.notes = [n for n in notes if n is not None] + data_notes(splits)
    for note in splits.notes:
        logger.warning("%s", note)
    return splits


def evaluate(
    clf: Classifier, data: LabeledTexts, cache: FeatureCache | None, batch_size: int = 32,
    n_boot: int = 1000, ece_bins: int = 15, seed: int = 0,
) -> dict[str, Any]:
    """Metrics of ``clf`` on labeled ``data`` (frozen features come from the cache): those of
    ``textransfer evaluate`` (accuracy, macro-F1 and their 95% bootstrap intervals, per-class
    scores, confusion matrix, ECE and reliability bins, majority-class baseline)."""
    from textransfer.evaluating import _labeled_metrics

    if data.labels is None:
        return {"n": len(data), "note": "no labels: predictions only, nothing to score"}
    y = clf.label_map.encode(data.labels)
    return _labeled_metrics(y, probabilities(clf, data, cache, batch_size), clf.labels, n_boot, ece_bins, seed)


def checkpoint_fingerprints(setup: SetupConfig, splits: Splits, encoder: Encoder, seed: int) -> dict[str, Any]:
    """What a checkpoint must have been trained on for ``--resume`` to continue it."""
    assert setup.strategy is not None
    skip = {"progress", "keep_checkpoints", "keep_checkpoints_after_run"}  # change nothing about the trained model
    return {
        "data": {"train": splits.train.fingerprint(), "val": None if splits.val is None else splits.val.fingerprint()},
        "encoder": {"name": encoder.name, **encoder.config()},
        "strategy": {"name": setup.strategy.name, "head": setup.strategy.head.model_dump(mode="json"), **setup.strategy.params()},
        "training": {k: v for k, v in training_settings(setup, seed).to_dict().items() if k not in skip},
    }


def prepare_checkpoints(
    plans: list[tuple[SetupConfig, Path, tuple[Encoder, Head, Strategy]]],
    splits: Splits,
    resume: bool,
    fresh: bool,
    seed: int,
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
        if not saves_checkpoints(strategy):
            continue
        root = out_dir / "checkpoints"
        if resume:
            ckpt.check_fingerprints(root, checkpoint_fingerprints(setup, splits, encoder, seed))
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
    """Trains (:func:`~textransfer.experiments._kernel.fit_setup`), evaluates and saves one
    setup into ``out_dir``.

    Strategies that checkpoint write epoch checkpoints into ``out_dir/checkpoints``; ``resume``
    continues from the newest one. ``data.unlabeled`` reaches the strategy as
    ``target_unlabeled``.
    """
    assert setup.encoder is not None and setup.strategy is not None
    components = components or build_components(setup)
    encoder, head, strategy = components
    cache = config_cache(config.cache_dir)
    logger.info("setup %s: %s + %s (%s)", setup.name, encoder.name, head.name, strategy.name)
    checkpoints = Checkpointing(out_dir / "checkpoints", resume, checkpoint_fingerprints(setup, splits, encoder, config.seed))
    fit = fit_setup(setup, splits.train, seed=config.seed, cache=cache, batch_size=config.batch_size,
                    val=splits.val, target_unlabeled=splits.unlabeled, components=components,
                    checkpoints=checkpoints)
    clf = fit.classifier
    results: dict[str, Any] = {
        "encoder": {"name": setup.encoder.name, **setup.encoder.params()},
        "head": {"name": setup.strategy.head.name, **setup.strategy.head.params()},
        "strategy": setup.strategy.name,
        "train": {"domain": splits.train.domain, "n": len(splits.train), "labels": splits.train.label_counts()},
        "fit_seconds": fit.info["fit_seconds"],
        "eval": {},
    }
    if splits.unlabeled is not None:
        results["unlabeled"] = {"domain": splits.unlabeled.domain, "n": len(splits.unlabeled)}
    t0 = time.perf_counter()
    if splits.test is not None:
        results["eval"]["test"] = {"domain": splits.test.domain, **evaluate(clf, splits.test, cache, config.batch_size)}
    for name, data in splits.evals.items():
        results["eval"][name] = {"domain": data.domain, **evaluate(clf, data, cache, config.batch_size)}
    results["eval_seconds"] = round(time.perf_counter() - t0, 2)
    if cache is not None:
        results["feature_cache"] = {"hits": cache.hits, "misses": cache.misses}
    # What the model card reports: each evaluation with its domain, and the training data.
    clf.metrics = {
        k: {"domain": v.get("domain"), "accuracy": v.get("accuracy"), "macro_f1": v.get("macro_f1")}
        for k, v in results["eval"].items()
    }
    clf.training_data = training_data_record(splits.train, config.data.train.source)
    if splits.val is not None and splits.val.labels is not None and len(splits.val):
        # What `textransfer evaluate` estimates the model's accuracy on unlabeled data from.
        used = " (the training also scored them each epoch)" if fit.info.get("history") else ""
        where = "data.val" if config.data.val is not None else f"data.val_size {config.data.val_size}"
        clf.set_calibration(probabilities(clf, splits.val, cache, config.batch_size),
                            clf.label_map.encode(splits.val.labels),
                            f"{len(splits.val)} validation rows of {splits.val.domain} ({where}){used}")
    if is_main_process():
        clf.save(out_dir / "model", portable=config.portable_models)
    return clf, results


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
    shared = SharedEncoders()
    components = {s.name: build_components(s, shared) for s in setups}
    main = is_main_process()
    with RunDirectory(config) as run_dir, tracking.tracked(config, "run") as tracker:
        out_dirs = {s.name: run_dir.path if len(setups) == 1 else run_dir.path / s.name for s in setups}
        prepare_checkpoints([(s, out_dirs[s.name], components[s.name]) for s in setups], splits, resume, fresh,
                            config.seed)
        metrics: dict[str, Any] = {}
        classifiers: dict[str, Classifier] = {}
        histories: dict[str, list[dict[str, Any]]] = {}
        for setup in setups:
            if main:
                out_dirs[setup.name].mkdir(parents=True, exist_ok=True)
            prefix = "" if len(setups) == 1 else f"{setup.name}/"
            with tracking.recording(tracker, prefix) as record:
                clf, res = run_setup(setup, splits, config, out_dirs[setup.name], resume=resume,
                                     components=components[setup.name])
            histories[setup.name] = record.fits
            if record.fits:
                last = record.fits[-1]
                res["training"] = {"epochs": len(last["epochs"]), "best_epoch": last["best_epoch"],
                                   "stopped_early": last["stopped_early"], "resumed_from": last["resumed_from"],
                                   "mixed_precision": last.get("mixed_precision")}
            if tracker is not None:
                for name, ev in res["eval"].items():
                    tracker.log(tracking.final_metrics(prefix, name, ev))
            metrics[setup.name] = res
            classifiers[setup.name] = clf
        caches = [r["feature_cache"] for r in metrics.values() if "feature_cache" in r]
        if caches:
            log_cache_summary(f"run {config.name}", sum(c["hits"] for c in caches), sum(c["misses"] for c in caches))
        with run_dir.outputs() as out:
            for name in metrics:
                folder = out / setup_folder(metrics, name)
                title = config.name if len(setups) == 1 else f"{config.name}: {name}"
                tracking.write_history(folder, histories[name], title=f"{title}: training")
            if len(setups) > 1:
                for name, res in metrics.items():
                    (out / name).mkdir(exist_ok=True)
                    (out / name / "metrics.json").write_text(json.dumps(res, indent=2, default=str))
            payload = {"name": config.name, "seed": config.seed, "notes": splits.notes, "setups": metrics}
            write_json(out / "metrics.json", payload)
            write_report(out, config, splits, metrics)
        if main:
            remove_finished_checkpoints([(s, out_dirs[s.name], components[s.name][2]) for s in setups], config.seed)
    return RunResult(run_dir=run_dir.path, metrics=metrics, classifiers=classifiers)


def remove_finished_checkpoints(plans: list[tuple[SetupConfig, Path, Strategy]], seed: int) -> None:
    """Deletes the epoch checkpoints of a finished run whose outputs are written, unless its
    training settings keep them (``training.keep_checkpoints_after_run: true``)."""
    for setup, out_dir, strategy in plans:
        if not saves_checkpoints(strategy) or training_settings(setup, seed).keep_checkpoints_after_run:
            continue
        root = out_dir / "checkpoints"
        if n := ckpt.remove_finished(root):
            logger.info("run finished: deleted its %d epoch checkpoint(s) in %s (keep them with "
                        "training.keep_checkpoints_after_run: true)", n, root)
