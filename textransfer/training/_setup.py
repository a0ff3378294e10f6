"""What the training loop sets up once per run: the Accelerator (devices, precision, processes),
AdamW and its kernel, the learning-rate schedule, and the compiled twin of the model.

:func:`set_up` returns a :class:`Run`, which every epoch of :mod:`textransfer.training.loop` uses.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import dataclass
from typing import Any

from textransfer.distributed import cpu_only_multi_process
from textransfer.training.args import DEFAULT_LR, TrainingArgs
from textransfer.training.optim import (
    TrainingError,
    linear_warmup_schedule,
    make_optimizer,
    param_groups,
)

logger = logging.getLogger("textransfer.training")


@dataclass
class Run:
    """What :func:`~textransfer.training.loop.train` sets up once and every epoch uses."""

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


# -- set-up: accelerator, optimizer, schedule --------------------------------------------------


def make_accelerator(args: TrainingArgs, find_unused_parameters: bool) -> Any:
    """Accelerate's Accelerator for these settings (precision, accumulation, processes)."""
    import torch

    from textransfer._optional import require
    from textransfer.precision import resolve_mixed_precision

    accelerate = require("accelerate", extra="transformers", feature="training a torch head or fine-tuning")
    from accelerate.utils import DistributedDataParallelKwargs

    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if find_unused_parameters else []
    device = "cuda" if torch.cuda.is_available() and not cpu_only_multi_process() else "cpu"
    mixed_precision = resolve_mixed_precision(args.mixed_precision, device)
    if mixed_precision is None:
        # What Accelerate itself reads for "not set" (`accelerate launch` sets it), read here so
        # that a fit asking for nothing gets that, not the precision a previous fit left behind.
        mixed_precision = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    forget_other_precision(mixed_precision)
    return accelerate.Accelerator(
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=args.grad_accum,
        kwargs_handlers=handlers, cpu=cpu_only_multi_process(),
    )


def forget_other_precision(mixed_precision: str) -> None:
    """Lets a second fit in one process use another precision than the first.

    Accelerate keeps one ``AcceleratorState`` per process and refuses a new ``Accelerator`` with
    another ``mixed_precision`` ("restart your runtime"): a notebook that fine-tunes at fp32 and
    then at bf16, or a benchmark that runs Trainer at bf16 before us, would fail. In a single
    process nothing else holds that state between fits, so it is cleared; under a launcher
    (several processes) it is left alone, as the launcher chose it.
    """
    from accelerate.state import AcceleratorState, PartialState

    state = AcceleratorState._shared_state
    if not state or PartialState().num_processes > 1:
        return
    if state.get("_mixed_precision") not in (None, mixed_precision):
        AcceleratorState._reset_state()


def set_up(
    module: Any, train_loader: Any, val_loader: Any, args: TrainingArgs,
    optimizer_groups: list[dict[str, Any]] | None, find_unused_parameters: bool,
) -> Run:
    """The accelerator, optimiser, schedule and prepared loaders of one
    :func:`~textransfer.training.loop.train` call, and the forward the training steps call (the
    compiled twin with ``training.compile``)."""
    lr = args.lr if args.lr is not None else DEFAULT_LR
    accelerator = make_accelerator(args, find_unused_parameters)
    groups = optimizer_groups or param_groups(module, lr, args.weight_decay)
    if not groups:
        raise TrainingError("no trainable parameters: everything is frozen")
    optimizer = make_optimizer(groups, lr, args.optimizer_kernel)
    n_batches = len(train_loader)
    steps_per_epoch = math.ceil(n_batches / args.grad_accum)
    steps = steps_per_epoch * args.epochs
    scheduler = linear_warmup_schedule(optimizer, int(args.warmup_ratio * steps), steps)
    batch_sampler = getattr(train_loader, "batch_sampler", None)  # kept: prepare() wraps it
    settings = checkpoint_settings(args, n_batches, module)
    prepared, optimizer, train_loader, scheduler = accelerator.prepare(module, optimizer, train_loader, scheduler)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    forward = compiled_twin(prepared, accelerator.num_processes) if use_compile(args, steps, accelerator.device) else prepared
    return Run(accelerator, prepared, accelerator.unwrap_model(prepared), optimizer, scheduler, train_loader,
               val_loader, batch_sampler, settings, steps_per_epoch, args, forward=forward)


# Optimiser steps from which ``compile: auto`` compiles, per device type; None: never. Only what
# was measured to pay goes here. On a 2-core Xeon (no AMX) compiled MiniLM-L6 steps ran no faster
# than eager ones with fused AdamW (the loop's default) and compiling took minutes
# (bench/train_step_speed.py). On an H200 (batch 32 x 64 tokens, fp32) the compiled steps ran at
# 0.94x eager once compiled, and the first epoch took 8 s longer (compiling)
# (bench/finetune_vs_trainer.py --variant compile=true; docs/benchmark-notes.md): never on either.
COMPILE_AUTO_MIN_STEPS: dict[str, int | None] = {"cpu": None, "cuda": None}


def cxx_compiler() -> str | None:
    """The C++ compiler inductor would use on a CPU (its ``CXX`` variable, else g++ / clang++)."""
    import os

    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")


def use_compile(args: TrainingArgs, steps: int, device: Any) -> bool:
    """Whether to compile: ``compile: true`` always (an error without a C++ compiler on a CPU),
    ``auto`` for runs of :data:`COMPILE_AUTO_MIN_STEPS` optimiser steps or more on the device."""
    kind = getattr(device, "type", str(device))
    on_cpu = kind == "cpu"
    if args.compile is True:
        if on_cpu and cxx_compiler() is None:
            raise TrainingError("training.compile: true needs a C++ compiler on a CPU (torch.compile builds "
                                "C++ kernels): install g++ (or set CXX), or use compile: false")
        return True
    if args.compile == "auto":
        min_steps = COMPILE_AUTO_MIN_STEPS.get(kind)
        use = min_steps is not None and steps >= min_steps and (not on_cpu or cxx_compiler() is not None)
        logger.info("compile: auto -> %s (%d optimiser steps; on %s compiling pays from %s)", use, steps, kind,
                    "never (measured)" if min_steps is None else f"{min_steps} steps")
        return use
    return False


def compiled_twin(module: Any, num_processes: int) -> Any:
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


def checkpoint_settings(args: TrainingArgs, n_batches: int, module: Any) -> dict[str, Any]:
    """What must match between a checkpoint and the run that resumes from it."""
    # How the steps are computed (compiled or not, which AdamW kernel) does not change what they compute.
    skip = {"progress", "keep_checkpoints", "keep_checkpoints_after_run", "compile", "optimizer_kernel", "threads"}
    params = sum(p.numel() for p in module.parameters())
    return {**{k: v for k, v in args.to_dict().items() if k not in skip}, "batches": n_batches, "parameters": params}
