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
from textransfer.config import (
    Component,
    RunConfig,
    RunDirectory,
    SetupConfig,
    is_main_process,
    load_config,
)
from textransfer.data import LabeledTexts, stratified_split
from textransfer.data import load as load_data
from textransfer.data.sources import DataSource
from textransfer.data.splits import shared_inputs
from textransfer.encoders.base import ENCODERS, Encoder, FittableEncoder
from textransfer.encoders.cache import FeatureCache, encode_cached, log_cache_summary
from textransfer.heads.base import HEADS, Head
from textransfer.hub import training_data_record
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
    proba = clf.predict_proba_features(encode_cached(clf.encoder, data, cache, batch_size=batch_size))
    return _labeled_metrics(y, proba, clf.labels, n_boot, ece_bins, seed)


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


def build_components(
    setup: SetupConfig, seed: int, cache: FeatureCache | None, batch_size: int,
    encoders: SharedEncoders | None = None,
) -> tuple[Encoder, Head, Strategy]:
    """Fresh encoder, head and strategy of ``setup``; the strategy gets cache, seed and batch size.

    With ``encoders``, a strategy that reads frozen features gets the run's shared encoder of
    that config (:class:`SharedEncoders`) instead of a fresh one.
    """
    assert setup.encoder is not None and setup.strategy is not None
    if encoders is not None and STRATEGIES.get(setup.strategy.name).encodes_frozen_features:
        encoder = encoders.get(setup.encoder)
    else:
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
    skip = {"progress", "keep_checkpoints", "keep_checkpoints_after_run"}  # change nothing about the trained model
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
    # What the model card reports: each evaluation with its domain, and the training data.
    clf.metrics = {
        k: {"domain": v.get("domain"), "accuracy": v.get("accuracy"), "macro_f1": v.get("macro_f1")}
        for k, v in results["eval"].items()
    }
    clf.training_data = training_data_record(splits.train, config.data.train.source)
    if is_main_process():
        clf.save(out_dir / "model", portable=config.portable_models)
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


def _ci(ev: dict[str, Any], key: str) -> str:
    ci = ev.get(f"{key}_ci95")
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def setup_folder(metrics: dict[str, Any], setup: str) -> str:
    """Where a setup's files go, relative to the run folder: ``""`` (one setup) or ``"NAME/"``."""
    return "" if len(metrics) == 1 else f"{setup}/"


def write_setup_plots(folder: Path, setup: str, res: dict[str, Any]) -> list[str]:
    """``plots/confusion.png`` (one panel per labeled eval set) and ``plots/reliability.png`` (one
    series each) of a setup, under ``folder``; returns their names relative to ``folder``."""
    scored = [(name, ev) for name, ev in res["eval"].items() if "confusion_matrix" in ev and "reliability" in ev]
    if not scored:
        return []
    from textransfer.evaluation.plots import confusion_figure, reliability_figure, save_figure

    panels = [(f"{name} ({ev['domain']}, acc {ev['accuracy']:.3f}, n={ev['n']})", ev["confusion_matrix"], ev["labels"])
              for name, ev in scored]
    save_figure(confusion_figure(panels, f"{setup}: confusion matrices"), folder / "plots" / "confusion.png")
    series = [(f"{name} ({ev['domain']}): ECE {ev['ece']:.3f}", ev["reliability"]) for name, ev in scored]
    save_figure(reliability_figure(series, f"Reliability: {setup}"), folder / "plots" / "reliability.png")
    return ["plots/confusion.png", "plots/reliability.png"]


def write_report(run_dir: Path, config: RunConfig, splits: Splits, metrics: dict[str, Any]) -> None:
    """Writes ``report.md`` into ``run_dir``: the data, its warnings, then the scores with 95%
    bootstrap intervals, ECE and the figures of each setup (written here too, under its folder:
    confusion matrices, reliability diagram; ``training.png`` when :func:`run` wrote one)."""
    lines = [f"# Run `{config.name}`", ""]
    lines.append(f"Training data: `{splits.train.domain}`, {len(splits.train)} rows {splits.train.label_counts()}.")
    if splits.test is not None:
        lines.append(f"In-domain test split (`test`): {len(splits.test)} rows, seed {config.seed}.")
    for name, data in splits.evals.items():
        lines.append(f"Evaluation set `{name}`: domain `{data.domain}`, {len(data)} rows {data.label_counts()}.")
    if splits.notes:
        lines += ["", "## Warnings", "", *(f"- {note}" for note in splits.notes)]
    lines += ["", "## Accuracy and macro-F1", "", summary_table(metrics), ""]
    lines += ["Intervals: 95% percentile bootstrap over the rows of each evaluation set; ECE over "
              "equal-width confidence bins (reliability diagrams below).", ""]
    for setup, res in metrics.items():
        lines += [f"## {setup}", ""]
        folder = setup_folder(metrics, setup)
        figures = write_setup_plots(run_dir / folder, setup, res)
        if (run_dir / folder / "plots" / tracking.TRAINING_PLOT).exists():
            figures.append(f"plots/{tracking.TRAINING_PLOT}")
        training = res.get("training")
        if training:
            lines += [f"Training: {training['epochs']} epoch(s), best epoch {training['best_epoch']}"
                      f"{' (stopped early)' if training['stopped_early'] else ''}; per-epoch history in "
                      f"`{folder}{tracking.HISTORY_FILE}`.", ""]
        for name, ev in res["eval"].items():
            if "per_class" not in ev:
                lines += [f"- `{name}`: {ev.get('note', 'not scored')}", ""]
                continue
            ece = f", ECE {ev['ece']:.3f}" if "ece" in ev else ""
            lines += [
                f"**{name}** ({ev['domain']}, n={ev['n']}): accuracy {ev['accuracy']:.3f}{_ci(ev, 'accuracy')}, "
                f"macro-F1 {ev['macro_f1']:.3f}{_ci(ev, 'macro_f1')}{ece}, majority-class baseline "
                f"{ev['majority_baseline']:.3f}",
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
        for f in figures:
            lines += [f"![{Path(f).stem}]({folder}{f})", ""]
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
    shared = SharedEncoders()
    components = {s.name: build_components(s, config.seed, _run_cache(config), config.batch_size, shared) for s in setups}
    main = is_main_process()
    with RunDirectory(config) as run_dir, tracking.tracked(config, "run") as tracker:
        out_dirs = {s.name: run_dir.path if len(setups) == 1 else run_dir.path / s.name for s in setups}
        prepare_checkpoints([(s, out_dirs[s.name], components[s.name]) for s in setups], splits, resume, fresh)
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
                                   "stopped_early": last["stopped_early"], "resumed_from": last["resumed_from"]}
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
            (out / "metrics.json").write_text(json.dumps(payload, indent=2, default=str))
            write_report(out, config, splits, metrics)
        if main:
            remove_finished_checkpoints([(out_dirs[s.name], components[s.name][2]) for s in setups])
    return RunResult(run_dir=run_dir.path, metrics=metrics, classifiers=classifiers)


def remove_finished_checkpoints(plans: list[tuple[Path, Strategy]]) -> None:
    """Deletes the epoch checkpoints of a finished run whose outputs are written, unless its
    training settings keep them (``training.keep_checkpoints_after_run: true``)."""
    for out_dir, strategy in plans:
        if not hasattr(strategy, "checkpoint_dir") or strategy.training.keep_checkpoints_after_run:
            continue
        root = out_dir / "checkpoints"
        if n := ckpt.remove_finished(root):
            logger.info("run finished: deleted its %d epoch checkpoint(s) in %s (keep them with "
                        "training.keep_checkpoints_after_run: true)", n, root)
