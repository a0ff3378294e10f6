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

import functools
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from textransfer.distributed import cpu_only_multi_process
from textransfer.training import checkpoint as ckpt

logger = logging.getLogger("textransfer.training")

DEFAULT_LR = 1e-3  # for heads trained on frozen features; fine-tuning brings its own default

OptimizerKernel = Literal["auto", "fused", "foreach", "for-loop"]
OPTIMIZER_KERNELS: tuple[str, ...] = ("auto", "fused", "foreach", "for-loop")
COMPILE_MODES: tuple[object, ...] = (False, True, "auto")


@dataclass
class TrainingArgs:
    """Optimisation settings (the ``training:`` section of a config).

    Attributes:
        epochs: passes over the training data.
        batch_size: examples per optimiser step and process (before accumulation).
        lr: peak learning rate (AdamW); None: the strategy's default (1e-3 for a head on frozen
            features, 5e-5 for fine-tuning, where it is the lr of the top encoder group).
        weight_decay: AdamW weight decay (not applied to biases and norms).
        warmup_ratio: fraction of steps with linear warmup, then linear decay to 0.
        grad_accum: batches accumulated per optimiser step.
        max_grad_norm: gradient clipping norm (None: no clipping).
        mixed_precision: ``"no"``, ``"bf16"``, ``"fp16"`` (GPU) or ``"auto"`` (bf16 where it
            is faster than fp32: CPUs with AMX, GPUs with bf16; else no; see
            :mod:`textransfer.precision`); handled by Accelerate. None (default) takes it from
            the launcher (``accelerate launch --config_file ...``), else no.
        metric: validation metric for early stopping and best-weights selection.
        patience: epochs without improvement before stopping (None: never stop early).
        seed: seeds data order, dropout and initialisation.
        progress: show a tqdm bar of the steps of each epoch: None (default) when stderr is a
            terminal (see :mod:`textransfer._progress`), True always, False never.
        keep_checkpoints: complete epoch checkpoints kept on disk while training.
        keep_checkpoints_after_run: keep the epoch checkpoints once the run has finished and
            written its outputs (default: the runner deletes them then; an interrupted run
            always keeps its checkpoints, for ``--resume``).
        optimizer_kernel: AdamW's implementation: ``auto`` (default: fused where torch has it,
            else torch's default), ``fused``, ``foreach`` or ``for-loop`` (an error where torch
            lacks the one named). All give the same updates up to rounding.
        compile: ``torch.compile`` the training forward/backward (the model's repeated blocks,
            each compiled once; evaluation stays eager): False (default), True, or ``auto``
            (compile where it measured to pay back within the run's optimiser steps, see
            :data:`COMPILE_AUTO_MIN_STEPS`: nowhere measured so far, so auto trains eagerly).
            Needs a C++ compiler on a CPU.
        threads: torch's CPU threads while training (restored afterwards): None (default:
            torch's own setting, one per core), a number, or ``auto``: one per core that other
            processes are not using at the start of the fit (see
            :mod:`textransfer.training.threads`; on a shared 2-core machine, 2 threads ran at
            0.26x the speed of 1 while other work kept the cores busy).
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    grad_accum: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: Literal["no", "bf16", "fp16", "auto"] | None = None
    metric: Literal["accuracy", "macro_f1", "loss"] = "accuracy"
    patience: int | None = 3
    seed: int = 0
    progress: bool | None = None
    keep_checkpoints: int = 1
    keep_checkpoints_after_run: bool = False
    optimizer_kernel: OptimizerKernel = "auto"
    compile: Literal[False, True, "auto"] = False
    threads: int | str | None = None  # a number, "auto" or None (checked below: one clear message)

    def __post_init__(self) -> None:
        # `not x > 0` style comparisons: NaN fails them too.
        for name in ("epochs", "batch_size", "grad_accum", "keep_checkpoints"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"training.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"training.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"training.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not self.weight_decay >= 0:
            raise ValueError(f"training.weight_decay must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm is not None and not self.max_grad_norm >= 0:
            raise ValueError(f"training.max_grad_norm must be >= 0 (or null: no clipping), got {self.max_grad_norm}")
        if self.patience is not None and not self.patience >= 1:
            raise ValueError(f"training.patience must be >= 1 (or null: never stop early), got {self.patience}")
        if self.mixed_precision not in (None, "no", "bf16", "fp16", "auto"):
            raise ValueError(f"training.mixed_precision must be no, bf16, fp16 or auto, got {self.mixed_precision!r}")
        if self.optimizer_kernel not in OPTIMIZER_KERNELS:
            raise ValueError(f"training.optimizer_kernel must be one of {', '.join(OPTIMIZER_KERNELS)}, "
                             f"got {self.optimizer_kernel!r}")
        if self.threads is not None and self.threads != "auto" and not (
            isinstance(self.threads, int) and not isinstance(self.threads, bool) and self.threads >= 1
        ):
            raise ValueError(f"training.threads must be a number >= 1, auto or null, got {self.threads!r}")
        if not any(self.compile is mode for mode in COMPILE_MODES) and self.compile != "auto":
            raise ValueError(f"training.compile must be false, true or auto, got {self.compile!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def _training_adapter() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(TrainingArgs)


def training_args(settings: Mapping[str, Any], section: str = "training") -> TrainingArgs:
    """TrainingArgs from a config's ``training:`` mapping, every value checked and converted.

    Args:
        settings: ``{key: value}`` as read from YAML (``"1e-3"`` and ``3`` are accepted for floats).
        section: where the mapping sits in the config, for messages (``setups[b].training``).

    Raises:
        ValueError: an unknown key, or a value of the wrong type or range, naming ``section.key``.

    Example:
        >>> training_args({"lr": "1e-3", "epochs": 2}).lr
        0.001
    """
    from pydantic import ValidationError

    from textransfer._registry import check_params

    check_params(TrainingArgs, dict(settings), section=section, name="training")
    try:
        return _training_adapter().validate_python(dict(settings))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        if err["loc"]:  # a type error of one key
            key = ".".join(str(p) for p in err["loc"])
            msg = err["msg"][:1].lower() + err["msg"][1:]
            raise ValueError(f"{section}.{key}: {msg} (got {err['input']!r})") from None
        # a range check of __post_init__, worded as "training.<key> must be ..."
        msg = err["msg"].removeprefix("Value error, ")
        raise ValueError(section + msg.removeprefix("training")) from None


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


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


def set_seed(seed: int) -> None:
    """Seeds Python, NumPy and torch (all devices)."""
    from textransfer._optional import require

    require("accelerate", extra="transformers", feature="training a torch head or fine-tuning")
    from accelerate.utils import set_seed as _set_seed

    _set_seed(seed)


def param_groups(module: Any, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups over trainable parameters only: no weight decay for biases and norm weights."""
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "lr": lr}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "lr": lr})
    return [g for g in groups if g["params"]]


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


def _settings(args: TrainingArgs, n_batches: int, module: Any) -> dict[str, Any]:
    """What must match between a checkpoint and the run that resumes from it."""
    # How the steps are computed (compiled or not, which AdamW kernel) does not change what they compute.
    skip = {"progress", "keep_checkpoints", "keep_checkpoints_after_run", "compile", "optimizer_kernel", "threads"}
    params = sum(p.numel() for p in module.parameters())
    return {**{k: v for k, v in args.to_dict().items() if k not in skip}, "batches": n_batches, "parameters": params}


@dataclass
class _Run:
    """What :func:`train` sets up once and every epoch uses."""

    accelerator: Any
    module: Any  # prepared (possibly DDP-wrapped)
    unwrapped: Any  # the caller's module
    optimizer: Any
    scheduler: Any
    train_loader: Any
    val_loader: Any
    batch_sampler: Any  # the caller's sampler (accelerate wraps the loader's)
    settings: dict[str, Any]  # what a checkpoint must match
    steps_per_epoch: int
    args: TrainingArgs
    forward: Any = None  # what training steps call: ``module``, or its compiled twin (same parameters)
    last_counts: tuple[int, int] | None = None  # trainable / all parameters, last logged


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
    run = _set_up(module, train_loader, val_loader, args, optimizer_groups, find_unused_parameters)
    root = Path(checkpoint_dir) if checkpoint_dir is not None else None
    state = _resume(run, root) if root is not None and resume else _fresh_start(run, root)
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
    run.unwrapped.eval()
    run.accelerator.free_memory()
    result = state.result
    if record is not None:
        record.add_fit(tracking.fit_entry(result.history, result.timing, args.metric, result.best_epoch,
                                          result.stopped_early, result.resumed_from))
    return result


# -- set-up: accelerator, optimizer, schedule --------------------------------------------------


def _accelerator(args: TrainingArgs, find_unused_parameters: bool) -> Any:
    """Accelerate's Accelerator for these settings (precision, accumulation, processes)."""
    import torch

    from textransfer._optional import require
    from textransfer.precision import resolve_mixed_precision

    accelerate = require("accelerate", extra="transformers", feature="training a torch head or fine-tuning")
    from accelerate.utils import DistributedDataParallelKwargs

    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if find_unused_parameters else []
    device = "cuda" if torch.cuda.is_available() and not cpu_only_multi_process() else "cpu"
    mixed_precision = resolve_mixed_precision(args.mixed_precision, device)
    _forget_other_precision(mixed_precision)
    return accelerate.Accelerator(
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=args.grad_accum,
        kwargs_handlers=handlers, cpu=cpu_only_multi_process(),
    )


def _forget_other_precision(mixed_precision: str | None) -> None:
    """Lets a second fit in one process use another precision than the first.

    Accelerate keeps one ``AcceleratorState`` per process and refuses a new ``Accelerator`` with
    another ``mixed_precision`` ("restart your runtime"): a notebook that fine-tunes at fp32 and
    then at bf16, or a benchmark that runs Trainer at bf16 before us, would fail. In a single
    process nothing else holds that state between fits, so it is cleared; under a launcher
    (several processes) it is left alone, as the launcher chose it.
    """
    from accelerate.state import AcceleratorState, PartialState

    state = AcceleratorState._shared_state
    if not state or mixed_precision is None or PartialState().num_processes > 1:
        return
    if state.get("_mixed_precision") not in (None, mixed_precision):
        AcceleratorState._reset_state()


def _optimizer(groups: list[dict[str, Any]], lr: float, kernel: OptimizerKernel = "auto") -> Any:
    """AdamW with the kernel ``training.optimizer_kernel`` names.

    ``auto``: the fused kernel (one pass over all tensors; what Trainer uses on torch >= 2.8)
    where torch has it for these tensors, else torch's default. On a 2-core Xeon a whole MiniLM-L6
    training step (batch 32) ran 1.38x faster with it than with the for-loop AdamW (median of
    three repeats on a busy machine; ``bench/train_step_speed.py``, docs/benchmark-notes.md).
    ``fused`` / ``foreach`` / ``for-loop``: that kernel, or an error where torch lacks it.
    """
    import torch

    if kernel == "auto":
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):  # older torch, or an unsupported device/dtype
            return torch.optim.AdamW(groups, lr=lr)
    try:
        if kernel == "fused":
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        return torch.optim.AdamW(groups, lr=lr, foreach=kernel == "foreach")
    except (RuntimeError, TypeError, ValueError) as exc:
        raise TrainingError(
            f"training.optimizer_kernel {kernel!r} is not available here ({exc}); use optimizer_kernel: auto"
        ) from None


def linear_warmup_schedule(optimizer: Any, warmup_steps: int, total_steps: int) -> Any:
    """The learning rate rises linearly from 0 over ``warmup_steps``, then falls linearly to 0
    at ``total_steps`` (BERT's schedule; the same factors as transformers'
    ``get_linear_schedule_with_warmup``), as a torch ``LambdaLR``."""
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _set_up(
    module: Any, train_loader: Any, val_loader: Any, args: TrainingArgs,
    optimizer_groups: list[dict[str, Any]] | None, find_unused_parameters: bool,
) -> _Run:
    lr = args.lr if args.lr is not None else DEFAULT_LR
    accelerator = _accelerator(args, find_unused_parameters)
    groups = optimizer_groups or param_groups(module, lr, args.weight_decay)
    if not groups:
        raise TrainingError("no trainable parameters: everything is frozen")
    optimizer = _optimizer(groups, lr, args.optimizer_kernel)
    n_batches = len(train_loader)
    steps_per_epoch = math.ceil(n_batches / args.grad_accum)
    steps = steps_per_epoch * args.epochs
    scheduler = linear_warmup_schedule(optimizer, int(args.warmup_ratio * steps), steps)
    batch_sampler = getattr(train_loader, "batch_sampler", None)  # kept: prepare() wraps it
    settings = _settings(args, n_batches, module)
    prepared, optimizer, train_loader, scheduler = accelerator.prepare(module, optimizer, train_loader, scheduler)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    forward = _compiled(prepared, accelerator.num_processes) if _use_compile(args, steps, accelerator.device) else prepared
    return _Run(accelerator, prepared, accelerator.unwrap_model(prepared), optimizer, scheduler, train_loader,
                val_loader, batch_sampler, settings, steps_per_epoch, args, forward=forward)


# Optimiser steps from which ``compile: auto`` compiles, per device type; None: never. Only what
# bench/train_step_speed.py measured to pay goes here. On a 2-core Xeon (no AMX) compiled
# MiniLM-L6 steps ran no faster than eager ones with fused AdamW (the loop's default) and compiling
# took minutes (docs/benchmark-notes.md), so a CPU never compiles on auto; GPUs are not measured yet.
COMPILE_AUTO_MIN_STEPS: dict[str, int | None] = {"cpu": None, "cuda": None}


def _cxx_compiler() -> str | None:
    """The C++ compiler inductor would use on a CPU (its ``CXX`` variable, else g++ / clang++)."""
    import os

    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")


def _use_compile(args: TrainingArgs, steps: int, device: Any) -> bool:
    """Whether to compile: ``compile: true`` always (an error without a C++ compiler on a CPU),
    ``auto`` for runs of :data:`COMPILE_AUTO_MIN_STEPS` optimiser steps or more on the device."""
    kind = getattr(device, "type", str(device))
    on_cpu = kind == "cpu"
    if args.compile is True:
        if on_cpu and _cxx_compiler() is None:
            raise TrainingError("training.compile: true needs a C++ compiler on a CPU (torch.compile builds "
                                "C++ kernels): install g++ (or set CXX), or use compile: false")
        return True
    if args.compile == "auto":
        min_steps = COMPILE_AUTO_MIN_STEPS.get(kind)
        use = min_steps is not None and steps >= min_steps and (not on_cpu or _cxx_compiler() is not None)
        logger.info("compile: auto -> %s (%d optimiser steps; on %s compiling pays from %s)", use, steps, kind,
                    "never (measured)" if min_steps is None else f"{min_steps} steps")
        return use
    return False


def _compiled(module: Any, num_processes: int) -> Any:
    """``module``'s compiled twin for the training steps (shares its parameters and buffers).

    One process: accelerate's regional compilation, which compiles a transformer's repeated
    layer once and reuses the code for every layer (a fraction of the whole model's compile
    time); the module itself stays eager, so evaluation and checkpoints are unchanged. Several
    processes: the DDP wrapper is compiled whole, as torch documents.
    """
    import torch

    if num_processes > 1:
        return torch.compile(module)
    from accelerate.utils import compile_regions

    return compile_regions(module)


# -- checkpoints and resume --------------------------------------------------------------------


def _fresh_start(run: _Run, root: Path | None) -> _Progress:
    """A new run: checkpoints of an earlier run in ``root`` are removed (--resume keeps them)."""
    if root is not None:
        if run.accelerator.is_main_process and (n := ckpt.clear(root)):
            logger.info("removed %d old checkpoint(s) in %s (use --resume to continue a run)", n, root)
        run.accelerator.wait_for_everyone()
    return _Progress()


def _resume(run: _Run, root: Path) -> _Progress:
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


def _checkpoint(run: _Run, root: Path, epoch: int, progress: _Progress) -> None:
    state = {"epoch": epoch, "bad_epochs": progress.bad_epochs, "settings": run.settings,
             "result": {k: v for k, v in asdict(progress.result).items() if k != "resumed_from"}}
    if (fingerprints := ckpt.recorded(root)) is not None:  # what --resume checks
        state["fingerprints"] = fingerprints
    _save_epoch(run.accelerator, root, epoch, state, progress.best_state, run.args.keep_checkpoints)


# -- one epoch: steps, then validation ---------------------------------------------------------


def _train_epoch(run: _Run, epoch: int, record: Any, progress: _Progress) -> tuple[dict[str, float], dict[str, float]]:
    """Trains one epoch, validates, updates ``progress`` (best weights, patience); returns the
    epoch's history row and its timing."""
    from textransfer._progress import progress as progress_bar

    args, accelerator = run.args, run.accelerator
    _set_epoch(run, epoch)
    run.module.train()
    total, seen = 0.0, 0
    t_epoch = time.perf_counter()
    step = epoch * run.steps_per_epoch  # optimiser steps so far (the same on resume)
    step_loss, step_n = 0.0, 0
    bar = progress_bar(total=len(run.train_loader), desc=f"epoch {epoch + 1}/{args.epochs}", unit="step",
                       show=args.progress if accelerator.is_local_main_process else False)
    # Only the parameters that can get a gradient are clipped (what AdamW steps anyway).
    clipped = [p for p in run.module.parameters() if p.requires_grad]
    for batch in run.train_loader:
        with accelerator.accumulate(run.module):
            value = _step(run, batch, clipped, epoch)
            step_loss, step_n = step_loss + value, step_n + 1
            if accelerator.sync_gradients:
                step += 1
                if record is not None:
                    record.step(step, step_loss / step_n, _top_lr(run.optimizer))
                step_loss, step_n = 0.0, 0
        n = len(batch["labels"])
        total, seen = total + value * n, seen + n
        if not bar.disable:
            bar.update(1)
            bar.set_postfix(loss=f"{total / max(seen, 1):.4f}")
    train_s = time.perf_counter() - t_epoch
    row = {"epoch": epoch + 1, "train_loss": total / max(seen, 1), "lr": _top_lr(run.optimizer)}
    if run.val_loader is not None:
        _validate(run, epoch, row, progress)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_acc=f"{row['val_accuracy']:.4f}")
    bar.close()
    # Samples of every process (each sees its shard of the batches).
    timing = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - t_epoch, 3),
              "samples_per_s": round(seen * accelerator.num_processes / max(train_s, 1e-9), 1)}
    return row, timing


def _set_epoch(run: _Run, epoch: int) -> None:
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


def _step(run: _Run, batch: dict[str, Any], clipped: list[Any], epoch: int) -> float:
    """One forward/backward (an optimiser step when accumulation is complete); the loss."""
    forward = run.forward if run.forward is not None else run.module  # no `or`: a compiled module has __len__
    loss = forward(**batch)["loss"]
    value = float(loss.item())  # the one host sync of a step: NaN check and running loss
    if not math.isfinite(value):
        raise TrainingError(
            f"loss became {value} at epoch {epoch + 1}: lower training.lr, "
            "enable training.max_grad_norm, or check the inputs; no model was written"
        )
    run.accelerator.backward(loss)
    if run.args.max_grad_norm and run.accelerator.sync_gradients:
        run.accelerator.clip_grad_norm_(clipped, run.args.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad()
    return value


def _validate(run: _Run, epoch: int, row: dict[str, float], progress: _Progress) -> None:
    """Adds the validation scores to ``row``; keeps the best weights and counts epochs without
    improvement (early stopping)."""
    metric = run.args.metric
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
