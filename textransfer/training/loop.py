"""The one training loop. Hugging Face Accelerate owns devices, precision and processes here;
nothing else in textransfer moves tensors between devices or sets up autocast.

``train`` fits any ``nn.Module`` whose ``forward(**batch)`` returns ``{"loss", "logits"}`` (the
batch holds ``labels``). Validation runs each epoch through ``gather_for_metrics``; early stopping
watches ``TrainingArgs.metric`` and the best weights are restored at the end. With a
``checkpoint_dir``, the state after every epoch is saved (see ``training/checkpoint.py``) and
``resume=True`` continues from the newest complete checkpoint, reproducing the uninterrupted run.

Each epoch's row of the history holds the mean train loss, the learning rate at its end (the
largest of the parameter groups: with layer-wise rates, the top one) and, with a validation loader,
the validation loss and accuracy (and macro-F1 when that is the metric); the epoch's seconds and
samples/s are kept apart (``TrainResult.timing``), as they differ between otherwise identical
runs. Inside :func:`textransfer.tracking.recording` the loop also reports every optimiser step's
loss and every epoch to the run's trackers, and the whole history at the end. A progress bar
(:mod:`textransfer._progress`) shows the steps of each epoch on a terminal.

Several processes: ``torchrun --nproc_per_node N`` (or ``accelerate launch`` on GPUs) runs the
same code; each process sees its shard of every batch list, and metrics are gathered.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textransfer.training import checkpoint as ckpt
from textransfer.training._setup import Run, set_up
from textransfer.training.args import TrainingArgs
from textransfer.training.optim import TrainingError

logger = logging.getLogger("textransfer.training")

@dataclass
class TrainResult:
    """What ``train`` reports: per-epoch history and the selected epoch.

    ``history`` rows are reproducible (a resumed run has the same rows as an uninterrupted one);
    ``timing`` holds each epoch's ``seconds`` and ``samples_per_s``, which are not.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    timing: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    resumed_from: int | None = None  # the epoch of the checkpoint training resumed from
    # Accelerate's resolved mixed precision of this fit ("no", "bf16", "fp16"): `auto` resolved.
    mixed_precision: str | None = None


def set_seed(seed: int) -> None:
    """Seeds Python, NumPy and torch (all devices)."""
    from textransfer._optional import require

    require("accelerate", extra="transformers", feature="training a torch head or fine-tuning")
    from accelerate.utils import set_seed as _set_seed

    _set_seed(seed)


def _score(metric: str, loss: float, y: np.ndarray, pred: np.ndarray) -> float:
    if metric == "loss":
        return -loss  # higher is better everywhere below
    if metric == "accuracy":
        return float((y == pred).mean()) if len(y) else 0.0
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", zero_division=0))


def evaluate(accelerator: Any, module: Any, loader: Iterable[dict[str, Any]]) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean loss, labels and predicted ids over ``loader``, gathered across processes."""
    import torch

    module.eval()
    losses, ys, preds = [], [], []
    with torch.no_grad():
        for batch in loader:
            out = module(**batch)
            logits, labels = accelerator.gather_for_metrics((out["logits"], batch["labels"]))
            losses.append(float(out["loss"]) * len(labels))
            ys.append(labels.cpu().numpy())
            preds.append(logits.argmax(-1).cpu().numpy())
    n = sum(len(y) for y in ys) or 1
    return sum(losses) / n, np.concatenate(ys), np.concatenate(preds)


def _cpu_state(module: Any) -> dict[str, Any]:
    # Clones on the CPU: the best weights must not follow later updates nor hold GPU memory.
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


def _save_epoch(accelerator: Any, root: Path, epoch: int, state: dict[str, Any], best: dict[str, Any] | None, keep: int) -> None:
    """Writes the checkpoint of ``epoch`` atomically (every process takes part)."""
    from safetensors.torch import save_file

    tmp = ckpt.partial_dir(root, epoch)
    # accelerate logs one INFO line per file saved; one line per checkpoint (below) is enough.
    logging.getLogger("accelerate.checkpointing").setLevel(logging.WARNING)
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a crash during an earlier save
        root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # model, optimizer, scheduler, RNG states of each process
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / ckpt.STATE_FILE).write_text(json.dumps(state, indent=2))
        if best is not None:
            save_file(best, str(tmp / ckpt.BEST_FILE))
        ckpt.write_manifest(tmp, epoch)
        path = ckpt.finalize(root, epoch, keep)
        logger.info("checkpoint: %s", path)
    accelerator.wait_for_everyone()


@dataclass
class _Progress:
    """What changes from epoch to epoch, and what a checkpoint restores."""

    result: TrainResult = field(default_factory=TrainResult)
    best_state: dict[str, Any] | None = None
    bad_epochs: int = 0
    start: int = 0


def train(
    module: Any,
    train_loader: Any,
    val_loader: Any = None,
    args: TrainingArgs | None = None,
    optimizer_groups: list[dict[str, Any]] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    find_unused_parameters: bool = False,
) -> TrainResult:
    """Trains ``module`` in place and returns the history.

    Args:
        module: ``nn.Module``; ``module(**batch)`` -> ``{"loss": scalar, "logits": (n, k)}``.
        train_loader: a torch DataLoader of dict batches that include ``labels`` ``(n,)``; a
            batch sampler with ``set_epoch`` is told the epoch (deterministic order on resume).
        val_loader: optional DataLoader for per-epoch validation and early stopping.
        args: optimisation settings.
        optimizer_groups: AdamW parameter groups (default: :func:`param_groups`); lets callers
            give layer-wise learning rates. Parameters frozen now but unfrozen by
            ``on_epoch_start`` later may appear (AdamW skips parameters without a gradient).
        on_epoch_start: called with the epoch index (0-based) before each epoch (e.g. gradual
            unfreezing); also on resume, so it must depend on the epoch only.
        on_epoch_end: called with the epoch (1-based) and its history row, after the checkpoint.
        checkpoint_dir: where epoch checkpoints go (None: no checkpoints). Without ``resume``,
            old checkpoints there are removed first.
        resume: continue from the newest complete checkpoint in ``checkpoint_dir``.
        find_unused_parameters: tell DDP that some parameters may get no gradient in a step
            (gradual unfreezing); ignored in a single process.

    Raises:
        TrainingError: NaN/inf loss, or nothing to train.
        CheckpointError: a corrupt/partial checkpoint, or one written with other settings.
    """
    from textransfer.training.threads import torch_threads

    args = args or TrainingArgs()
    if args.metric is None:  # the loop's default; callers that know better (heads on frozen features) set it
        args = dataclasses.replace(args, metric="accuracy")
    with torch_threads(args.threads):
        return _train(module, train_loader, val_loader, args, optimizer_groups, on_epoch_start, on_epoch_end,
                      checkpoint_dir, resume, find_unused_parameters)


def _train(
    module: Any, train_loader: Any, val_loader: Any, args: TrainingArgs,
    optimizer_groups: list[dict[str, Any]] | None, on_epoch_start: Callable[[int], None] | None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None, checkpoint_dir: str | Path | None,
    resume: bool, find_unused_parameters: bool,
) -> TrainResult:
    """:func:`train`'s work, run under its thread setting."""
    from textransfer import tracking

    set_seed(args.seed)
    run = set_up(module, train_loader, val_loader, args, optimizer_groups, find_unused_parameters)
    root = Path(checkpoint_dir) if checkpoint_dir is not None else None
    state = _resume(run, root) if root is not None and resume else _fresh_start(run, root)
    state.result.mixed_precision = str(run.accelerator.mixed_precision)
    record = tracking.active()
    for epoch in range(state.start, args.epochs):
        if state.result.stopped_early:
            break
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        row, timing = _train_epoch(run, epoch, record, state)
        state.result.history.append(row)
        state.result.timing.append(timing)
        logger.info("epoch %s", {k: round(v, 4) if k != "lr" else float(f"{v:.3g}") for k, v in {**row, **timing}.items()})
        if record is not None:
            record.epoch({**row, **timing})
        if args.patience is not None and run.val_loader is not None and state.bad_epochs >= args.patience:
            state.result.stopped_early = True
        if root is not None:
            _checkpoint(run, root, epoch + 1, state)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
    if state.best_state is not None:
        run.unwrapped.load_state_dict(state.best_state)
    # Under mixed precision Accelerate wraps the module's forward in autocast; unwrapping without
    # that wrapper gives the caller back a module that predicts at full precision, as the saved
    # model will (inference precision is the encoder's `precision` setting, not training's).
    run.accelerator.unwrap_model(run.module, keep_fp32_wrapper=False)
    run.unwrapped.eval()
    run.accelerator.free_memory()
    result = state.result
    if record is not None:
        assert args.metric is not None  # resolved by train()
        record.add_fit(tracking.fit_entry(result.history, result.timing, args.metric, result.best_epoch,
                                          result.stopped_early, result.resumed_from,
                                          mixed_precision=result.mixed_precision))
    return result


# -- checkpoints and resume --------------------------------------------------------------------


def _fresh_start(run: Run, root: Path | None) -> _Progress:
    """A new run: checkpoints of an earlier run in ``root`` are removed (--resume keeps them)."""
    if root is not None:
        if run.accelerator.is_main_process and (n := ckpt.clear(root)):
            logger.info("removed %d old checkpoint(s) in %s (use --resume to continue a run)", n, root)
        run.accelerator.wait_for_everyone()
    return _Progress()


def _resume(run: Run, root: Path) -> _Progress:
    """The state of the newest complete checkpoint in ``root`` (a fresh start when there is none)."""
    found = ckpt.latest(root)
    if found is None:
        logger.warning("resume: no checkpoint in %s yet; training from the start", root)
        return _Progress()
    path, state = found
    if state["settings"] != run.settings:
        diff = sorted(k for k in run.settings if state["settings"].get(k) != run.settings[k])
        raise ckpt.CheckpointError(
            f"checkpoint {path} was written with other settings (differs in: {', '.join(diff)}); "
            "restore the original config, or run without --resume to start over"
        )
    run.accelerator.load_state(str(path))
    best_state = None
    if (path / ckpt.BEST_FILE).exists():
        from safetensors.torch import load_file

        best_state = load_file(str(path / ckpt.BEST_FILE))
    result = TrainResult(**{**state["result"], "resumed_from": state["epoch"]})
    logger.info("resumed from %s (epoch %d of %d done)", path, state["epoch"], run.args.epochs)
    return _Progress(result, best_state, state["bad_epochs"], state["epoch"])


def _checkpoint(run: Run, root: Path, epoch: int, progress: _Progress) -> None:
    state = {"epoch": epoch, "bad_epochs": progress.bad_epochs, "settings": run.settings,
             "result": {k: v for k, v in asdict(progress.result).items() if k != "resumed_from"}}
    if (fingerprints := ckpt.recorded(root)) is not None:  # what --resume checks
        state["fingerprints"] = fingerprints
    _save_epoch(run.accelerator, root, epoch, state, progress.best_state, run.args.keep_checkpoints)


# -- one epoch: steps, then validation ---------------------------------------------------------


def _train_epoch(run: Run, epoch: int, record: Any, progress: _Progress) -> tuple[dict[str, float], dict[str, float]]:
    """Trains one epoch, validates, updates ``progress`` (best weights, patience); returns the
    epoch's history row and its timing."""
    from textransfer._progress import progress as progress_bar

    args, accelerator = run.args, run.accelerator
    _set_epoch(run, epoch)
    run.module.train()
    t_epoch = time.perf_counter()
    step = epoch * run.steps_per_epoch  # optimiser steps so far (the same on resume)
    bar = progress_bar(total=len(run.train_loader), desc=f"epoch {epoch + 1}/{args.epochs}", unit="step",
                       show=args.progress if accelerator.is_local_main_process else False)
    # Only the parameters that can get a gradient are clipped (what AdamW steps anyway).
    clipped = [p for p in run.module.parameters() if p.requires_grad]
    # Each step's loss is read back one step late (see _EpochLosses): the host never waits for
    # the device between a forward and its backward.
    losses = _EpochLosses(epoch, record)
    for batch in run.train_loader:
        with accelerator.accumulate(run.module):
            loss = _step(run, batch, clipped)
            step_done = accelerator.sync_gradients
        step += int(step_done)
        losses.add(loss, len(batch["labels"]), step if step_done else None, _top_lr(run.optimizer))
        if not bar.disable:
            bar.update(1)
            bar.set_postfix(loss=f"{losses.mean():.4f}")
    losses.finish()
    train_s = time.perf_counter() - t_epoch
    row = {"epoch": epoch + 1, "train_loss": losses.mean(), "lr": _top_lr(run.optimizer)}
    if run.val_loader is not None:
        _validate(run, epoch, row, progress)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_acc=f"{row['val_accuracy']:.4f}")
    bar.close()
    # Samples of every process (each sees its shard of the batches).
    timing = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - t_epoch, 3),
              "samples_per_s": round(losses.seen * accelerator.num_processes / max(train_s, 1e-9), 1)}
    return row, timing


def _set_epoch(run: Run, epoch: int) -> None:
    """Tells the samplers the epoch, and logs the trainable share when freezing changed it."""
    from textransfer.training.freezing import count_parameters

    # Accelerate's loader re-sets its sampler's epoch from its own counter, which restarts at 0
    # in a resumed run: set both, so the data order depends on the epoch only.
    if hasattr(run.train_loader, "set_epoch"):
        run.train_loader.set_epoch(epoch)
    if hasattr(run.batch_sampler, "set_epoch"):
        run.batch_sampler.set_epoch(epoch)
    counts = count_parameters(run.unwrapped)
    if counts != run.last_counts:
        logger.info("epoch %d: %s of %s parameters trainable (%.1f%%)", epoch + 1, f"{counts[0]:,}",
                    f"{counts[1]:,}", 100 * counts[0] / max(counts[1], 1))
        run.last_counts = counts


def _step(run: Run, batch: dict[str, Any], clipped: list[Any]) -> Any:
    """One forward/backward (an optimiser step when accumulation is complete); the loss, a
    detached tensor that has not been read back to the host."""
    forward = run.forward if run.forward is not None else run.module  # no `or`: a compiled module has __len__
    loss = forward(**batch)["loss"]
    run.accelerator.backward(loss)
    if run.args.max_grad_norm and run.accelerator.sync_gradients:
        run.accelerator.clip_grad_norm_(clipped, run.args.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad()
    return loss.detach()


class _EpochLosses:
    """An epoch's running train loss, each step's loss read back to the host one step late; stops
    on a NaN/inf loss.

    ``loss.item()`` right after the forward (the way most loops write it) makes the host wait for
    the device before it may launch the backward; on a GPU, where small models are bound by
    kernel launches, that is idle device time every step. Here batch k's loss is read once batch
    k+1 has been launched, so the host runs a step ahead. On a CPU every op has finished when it
    returns, and nothing changes. A non-finite loss still stops training with a
    :class:`TrainingError` (a batch later than it occurred; no model is written either way).
    Trackers get each optimiser step's mean loss and its learning rate, as before.
    """

    def __init__(self, epoch: int, record: Any) -> None:
        self.epoch, self.record = epoch, record
        self.total, self.seen = 0.0, 0
        self.step_loss, self.step_n = 0.0, 0
        self.pending: tuple[Any, int, int | None, float] | None = None

    def add(self, loss: Any, n: int, step: int | None, lr: float) -> None:
        """Queues a batch's detached ``loss`` over ``n`` rows; ``step``: the optimiser step the
        batch completed (None while accumulating), ``lr`` the learning rate after it. Reads the
        batch queued before."""
        self.finish()
        self.pending = (loss, n, step, lr)

    def finish(self) -> None:
        """Reads back the queued batch, if any (the epoch's last one: call at its end)."""
        if self.pending is None:
            return
        loss, n, step, lr = self.pending
        self.pending = None
        value = float(loss.item())  # the one host sync of a step, a step late
        if not math.isfinite(value):
            raise TrainingError(
                f"loss became {value} at epoch {self.epoch + 1}: lower training.lr, "
                "enable training.max_grad_norm, or check the inputs; no model was written"
            )
        self.total, self.seen = self.total + value * n, self.seen + n
        self.step_loss, self.step_n = self.step_loss + value, self.step_n + 1
        if step is not None:
            if self.record is not None:
                self.record.step(step, self.step_loss / self.step_n, lr)
            self.step_loss, self.step_n = 0.0, 0

    def mean(self) -> float:
        """The mean loss per row of the batches read back so far."""
        return self.total / max(self.seen, 1)


def _validate(run: Run, epoch: int, row: dict[str, float], progress: _Progress) -> None:
    """Adds the validation scores to ``row``; keeps the best weights and counts epochs without
    improvement (early stopping)."""
    metric = run.args.metric
    assert metric is not None  # resolved by train(), the one place that knows the default
    val_loss, y, pred = evaluate(run.accelerator, run.module, run.val_loader)
    score = _score(metric, val_loss, y, pred)
    row.update(val_loss=val_loss, val_accuracy=_score("accuracy", val_loss, y, pred))
    if metric == "macro_f1":
        row["val_macro_f1"] = score
    result = progress.result
    if result.best_metric is None or score > result.best_metric:
        result.best_metric, result.best_epoch, progress.bad_epochs = score, epoch + 1, 0
        progress.best_state = _cpu_state(run.unwrapped)
    else:
        progress.bad_epochs += 1


def _top_lr(optimizer: Any) -> float:
    """The largest learning rate of the optimiser's groups now (the top group's, with layer-wise
    rates)."""
    return float(max(group["lr"] for group in optimizer.param_groups))
