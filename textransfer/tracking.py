"""Training histories and experiment tracking (TensorBoard, MLflow, wandb).

Two things every run kind (``run``, ``crossdomain``, ``curve``) gets from here:

* **Histories.** Each call of the training loop (:func:`textransfer.training.loop.train`) inside
  :func:`recording` reports its per-epoch rows (train loss, validation loss and metric, learning
  rate, seconds, samples/s) to the active :class:`TrainingRecord`; the run writes them as
  ``history.json`` with ``plots/training.png`` next to the model (:func:`write_history`).
* **Tracking.** With ``tracking: {log_with: [...]}`` in the config, :func:`tracked` starts one
  tracked run per textransfer run through Hugging Face Accelerate's tracker classes
  (``accelerate.tracking``): the resolved config as parameters, the training loss every
  ``log_every`` optimiser steps, the per-epoch rows, and the final metrics.

Where local trackers write (``tracking.dir``, default ``<output_dir>/tracking``)::

    tensorboard/<project>/<run name>_<time>/   event files: tensorboard --logdir <dir>/tensorboard
    mlruns/                                    MLflow file store, unless MLFLOW_TRACKING_URI is set;
                                               experiment <project>, run <run name>
    wandb/                                     wandb's local files (project <project>)

Accelerate's tracker classes are used directly rather than through a second ``Accelerator``:
the training loop's ``Accelerator`` sets the process-wide mixed precision, which another one
created earlier would fix to its own, and ``Accelerator.end_training`` also destroys the process
group of a multi-process launch that the next setup still needs.

Only the main process of a multi-process launch tracks. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("textransfer.tracking")

HISTORY_FILE = "history.json"
TRAINING_PLOT = "training.png"


# -- training records ---------------------------------------------------------------------------


@dataclass
class TrainingRecord:
    """What the training runs inside one :func:`recording` block report.

    Attributes:
        tracker: where step and epoch values go (None: only the histories are kept).
        prefix: put before every tracked key (``"minilm+finetune/movies_to_products/seed0/"``).
        log_every: track the training loss every this many optimiser steps.
        label: names the fits of this block in ``history.json`` and the training plot.
        fits: one entry per training run (:func:`fit_entry`), in order.
    """

    tracker: Tracker | None = None
    prefix: str = ""
    log_every: int = 1
    label: str = ""
    fits: list[dict[str, Any]] = field(default_factory=list)

    def step(self, step: int, loss: float, lr: float) -> None:
        """The training loss and learning rate after optimiser step ``step`` (1-based)."""
        if self.tracker is not None and step % self.log_every == 0:
            self.tracker.log({f"{self.prefix}train/loss": loss, f"{self.prefix}train/lr": lr}, step=step)

    def epoch(self, row: Mapping[str, Any]) -> None:
        """One epoch's history row (``epoch`` is the step)."""
        if self.tracker is not None:
            values = {f"{self.prefix}epoch/{k}": v for k, v in row.items() if k != "epoch" and _number(v)}
            self.tracker.log(values, step=int(row["epoch"]))

    def add_fit(self, entry: dict[str, Any]) -> None:
        self.fits.append({"label": self.label, **entry} if self.label else entry)


_ACTIVE: list[TrainingRecord] = []


@contextlib.contextmanager
def recording(tracker: Tracker | None = None, prefix: str = "", label: str = "") -> Iterator[TrainingRecord]:
    """Training runs inside this block report to the :class:`TrainingRecord` it yields.

    The runner knows which setup, pair and seed is being trained; the training loop, which sees
    only tensors, reads the record from here (as checkpoints read their fingerprints from
    :func:`textransfer.training.checkpoint.recording`).
    """
    record = TrainingRecord(tracker, prefix, tracker.log_every if tracker is not None else 1, label)
    _ACTIVE.append(record)
    try:
        yield record
    finally:
        _ACTIVE.remove(record)


def active() -> TrainingRecord | None:
    """The innermost :class:`TrainingRecord` (None outside :func:`recording`)."""
    return _ACTIVE[-1] if _ACTIVE else None


def fit_entry(history: Sequence[Mapping[str, Any]], timing: Sequence[Mapping[str, Any]], metric: str,
              best_epoch: int | None, stopped_early: bool, resumed_from: int | None,
              mixed_precision: str | None = None) -> dict[str, Any]:
    """One training run as ``history.json`` holds it: the epoch rows with their timing merged,
    and the precision it trained at (``mixed_precision``: ``no``, ``bf16`` or ``fp16``, resolved)."""
    times = {int(t["epoch"]): t for t in timing}
    epochs = [{**row, **{k: v for k, v in times.get(int(row["epoch"]), {}).items() if k != "epoch"}} for row in history]
    return {"metric": metric, "best_epoch": best_epoch, "stopped_early": stopped_early,
            "resumed_from": resumed_from, "mixed_precision": mixed_precision, "epochs": epochs}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# -- history.json and plots/training.png ---------------------------------------------------------


def training_figure(fits: Sequence[Mapping[str, Any]], title: str = "") -> Any:
    """Loss (train solid, validation dashed) and the validation metric per epoch, one colour per
    fit; a fit without validation rows has only its train loss."""
    from textransfer.evaluation.plots import _legend_outside, _plt

    plt = _plt()
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    metric_names = set()
    for i, fit in enumerate(fits):
        rows = fit["epochs"]
        if not rows:
            continue
        colour = colours[i % len(colours)]
        label = fit.get("label") or f"fit {i + 1}"
        epochs = [r["epoch"] for r in rows]
        ax_loss.plot(epochs, [r["train_loss"] for r in rows], "-o", ms=3, color=colour, label=f"{label} train")
        if any("val_loss" in r for r in rows):
            ax_loss.plot(epochs, [r.get("val_loss") for r in rows], "--o", ms=3, color=colour, label=f"{label} val")
        metric = fit.get("metric")
        key = "val_" + (metric if metric in ("accuracy", "macro_f1") else "accuracy")
        if any(key in r for r in rows):
            metric_names.add(key.removeprefix("val_"))
            ax_metric.plot(epochs, [r.get(key) for r in rows], "-o", ms=3, color=colour, label=label)
            best = fit.get("best_epoch")
            if best is not None and best in epochs:
                ax_metric.plot([best], [rows[epochs.index(best)].get(key)], "*", ms=11, color=colour)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss (train —, validation - -)", fontsize=9)
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel("validation " + " / ".join(sorted(metric_names)) if metric_names else "validation metric")
    ax_metric.set_title("validation metric (★ best epoch, restored)" if metric_names else "no validation split",
                        fontsize=9)
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if ax_loss.lines and (len(fits) > 1 or fits[0].get("label")):  # one unnamed fit: nothing to tell apart
        _legend_outside(ax_metric if ax_metric.lines else ax_loss, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def write_history(folder: Path, fits: Sequence[Mapping[str, Any]], title: str = "") -> list[Path]:
    """Writes ``folder/history.json`` and ``folder/plots/training.png`` (nothing without fits).

    Args:
        folder: where the model's files go (a staging folder of :class:`RunDirectory`: the files
            are renamed into place with the run's other outputs).
        fits: :func:`fit_entry` dicts, each with an optional ``label`` (seed, pair, budget).
        title: the figure's title.

    Returns:
        The files written.
    """
    fits = [f for f in fits if f.get("epochs")]
    if not fits:
        return []
    from textransfer.evaluation.plots import save_figure

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HISTORY_FILE
    path.write_text(json.dumps({"fits": list(fits)}, indent=2, default=str) + "\n")
    plot = save_figure(training_figure(fits, title), folder / "plots" / TRAINING_PLOT)
    return [path, plot]


# -- trackers ---------------------------------------------------------------------------------


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists as JSON text, None as ``"null"`` (what
    TensorBoard's hparams and MLflow's params accept)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def tracking_dir(spec: Any, output_dir: str | Path) -> Path:
    """``tracking.dir``, or ``<output_dir>/tracking``."""
    return Path(spec.dir if spec.dir else Path(output_dir) / "tracking").expanduser()


class Tracker:
    """One tracked run, logged to every tracker of ``spec.log_with`` (accelerate's classes).

    Args:
        spec: the config's ``tracking`` section (:class:`textransfer.config.TrackingConfig`).
        run_name: the run's name (the config's ``name``).
        output_dir: the config's ``output_dir`` (for the default ``tracking.dir``).

    Example:
        >>> with tracked(config, "run") as tracker:  # doctest: +SKIP
        ...     tracker.log({"test/accuracy": 0.91})
    """

    def __init__(self, spec: Any, run_name: str, output_dir: str | Path) -> None:
        self.spec = spec
        self.run_name = run_name
        self.directory = tracking_dir(spec, output_dir)
        self.log_every = int(spec.log_every)
        self.trackers: list[Any] = []
        self.paths: dict[str, str] = {}  # tracker name -> where it writes (for the log and tests)

    def start(self, params: Mapping[str, Any]) -> None:
        """Starts every tracker and logs ``params`` (flat: see :func:`flatten`) as the run's
        hyperparameters.

        Raises:
            ValueError: ``tracking.dir`` cannot be written.
        """
        from textransfer._folders import check_folder, make_folder

        check_folder(self.directory, "tracking.dir")
        make_folder(self.directory, "tracking.dir")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            for name in self.spec.log_with:
                self.trackers.append(self._make(name, stamp))
                self.trackers[-1].start()
            for tracker in self.trackers:
                tracker.store_init_configuration(dict(params))
        except BaseException:
            self.finish(failed=True)
            raise
        logger.info("tracking %s with %s", self.run_name,
                    ", ".join(f"{k} ({v})" for k, v in self.paths.items()))

    def _make(self, name: str, stamp: str) -> Any:
        from accelerate import tracking as acc

        project = self.spec.project
        if name == "tensorboard":
            root = self.directory / "tensorboard" / project
            run = f"{self.run_name}_{stamp}"
            self.paths[name] = str(root / run)
            return acc.TensorBoardTracker(run, str(root))
        if name == "mlflow":
            self.paths[name] = _mlflow_store(self.directory)
            return acc.MLflowTracker(experiment_name=project, run_name=self.run_name, tags={"textransfer.run": self.run_name})
        if name == "wandb":
            folder = self.directory / "wandb"
            folder.mkdir(parents=True, exist_ok=True)
            self.paths[name] = f"project {project}, files in {folder}"
            return acc.WandBTracker(project, name=self.run_name, dir=str(folder))
        raise ValueError(f"unknown tracker {name!r}")  # the config check makes this unreachable

    def log(self, values: Mapping[str, Any], step: int | None = None) -> None:
        """Logs numbers (``{"test/accuracy": 0.91}``) at ``step`` (None: the tracker's default)."""
        numbers = {k: float(v) for k, v in values.items() if _number(v)}
        if not numbers:
            return
        for tracker in self.trackers:
            tracker.log(numbers, step=step)

    def finish(self, failed: bool = False) -> None:
        """Ends every tracker's run (an MLflow run as FAILED when ``failed``)."""
        for tracker in self.trackers:
            try:
                if failed and tracker.name == "mlflow":
                    import mlflow

                    mlflow.end_run(status="FAILED")
                else:
                    tracker.finish()
            except Exception as exc:  # a tracker that cannot close must not hide the run's result
                logger.warning("could not close the %s tracker: %s", tracker.name, exc)
        self.trackers = []


def _mlflow_store(directory: Path) -> str:
    """The MLflow tracking URI: ``MLFLOW_TRACKING_URI`` when set, else a file store in
    ``directory/mlruns``. File stores need ``MLFLOW_ALLOW_FILE_STORE`` from MLflow 3.x on."""
    import mlflow

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri = (directory / "mlruns").resolve().as_uri()
        mlflow.set_tracking_uri(uri)
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


@contextlib.contextmanager
def tracked(config: Any, kind: str) -> Iterator[Tracker | None]:
    """A :class:`Tracker` for ``config`` (a run, crossdomain or curve config) while the block
    runs; None when the config has no ``tracking`` section or this is not the main process.

    The config is logged as parameters (``kind`` too); a failing block marks the MLflow run
    FAILED and re-raises.
    """
    from textransfer.distributed import is_main_process

    spec = getattr(config, "tracking", None)
    if spec is None or not is_main_process():
        yield None
        return
    tracker = Tracker(spec, config.name, config.output_dir)
    tracker.start({**flatten(config.model_dump(mode="json")), "kind": kind})  # the verb's name wins
    try:
        yield tracker
    except BaseException:
        tracker.finish(failed=True)
        raise
    tracker.finish()


def final_metrics(prefix: str, name: str, metrics: Mapping[str, Any]) -> dict[str, float]:
    """``{"<prefix><name>/accuracy": ..., ...}``: the headline numbers of one evaluation."""
    keys = ("accuracy", "macro_f1", "ece", "majority_baseline")
    out = {f"{prefix}{name}/{k}": metrics[k] for k in keys if _number(metrics.get(k))}
    for k in ("accuracy", "macro_f1"):
        ci = metrics.get(f"{k}_ci95")
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            out[f"{prefix}{name}/{k}_ci95_low"], out[f"{prefix}{name}/{k}_ci95_high"] = ci
    return out
