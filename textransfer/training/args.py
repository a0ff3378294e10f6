"""Training settings: :class:`TrainingArgs` (a config's ``training:`` section) and
:func:`training_args`, which reads and checks one."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

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
            features, 1e-2 for the ``linear`` head there, 5e-5 for fine-tuning, where it is the
            lr of the top encoder group).
        weight_decay: AdamW weight decay (not applied to biases and norms).
        warmup_ratio: fraction of steps with linear warmup, then linear decay to 0.
        grad_accum: batches accumulated per optimiser step.
        max_grad_norm: gradient clipping norm (None: no clipping).
        mixed_precision: ``"no"``, ``"bf16"``, ``"fp16"`` (GPU) or ``"auto"`` (bf16 where it
            is faster than fp32: CPUs with AMX, AVX-512 BF16 CPUs where the probe measured it
            faster, GPUs with bf16; else no; see
            :mod:`textransfer.precision`); handled by Accelerate. None (default) takes it from
            the launcher (``accelerate launch --config_file ...``), else no.
        metric: validation metric for early stopping and best-weights selection: ``accuracy``,
            ``macro_f1`` or ``loss``. None (default): the trainer's own default, validation loss
            for a torch head on frozen features (accuracy on a small validation split ties
            across epochs, and the earliest best epoch then stops training too soon) and
            accuracy for fine-tuning.
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
            :data:`textransfer.training._setup.COMPILE_AUTO_MIN_STEPS`: it paid on neither machine measured, a
            2-core Xeon and an H200, so auto trains eagerly).
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
    metric: Literal["accuracy", "macro_f1", "loss"] | None = None
    patience: int | None = 3
    seed: int = 0
    progress: bool | None = None
    keep_checkpoints: int = 1
    keep_checkpoints_after_run: bool = False
    optimizer_kernel: OptimizerKernel = "auto"
    compile: Literal[False, True, "auto"] = False
    threads: int | str | None = None  # a number, "auto" or None (checked below: one clear message)

    def __post_init__(self) -> None:
        if self.mixed_precision is False:  # YAML reads an unquoted `no` as false
            self.mixed_precision = "no"
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
        # Imported here: importing this module stays free of pydantic.
        from textransfer._seeds import check_seed

        try:
            check_seed(self.seed)
        except ValueError as exc:
            raise ValueError(f"training.seed: {exc}") from None
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
    settings = dict(settings)
    if settings.get("mixed_precision") is False:  # `mixed_precision: no` in YAML is the boolean false
        settings["mixed_precision"] = "no"
    try:
        return _training_adapter().validate_python(settings)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        if err["loc"]:  # a type error of one key
            key = ".".join(str(p) for p in err["loc"])
            msg = err["msg"][:1].lower() + err["msg"][1:]
            raise ValueError(f"{section}.{key}: {msg} (got {err['input']!r})") from None
        # a range check of __post_init__, worded as "training.<key> must be ..."
        msg = err["msg"].removeprefix("Value error, ")
        raise ValueError(section + msg.removeprefix("training")) from None
