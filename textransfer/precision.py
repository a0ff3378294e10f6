"""Numeric precision of encoding and fine-tuning: ``auto | fp32 | bf16 | int8``, resolved per machine.

``auto`` picks bf16 only where it measured faster than fp32: CPUs with AMX tiles (Intel Sapphire
Rapids and later; 1.7-1.9x for MiniLM encoding under bf16 autocast) and GPUs that support bf16.
A CPU with AVX-512 BF16 but no AMX gets fp32: there a 2048x2048 matmul ran at 162 GFLOP/s in bf16
against 288 in fp32, and MiniLM encoding at 0.4-0.5x the fp32 speed (docs/benchmark-notes.md,
"AVX-512 BF16 without AMX"). ``int8`` is never picked automatically (its features move by about
1% in cosine); it is requested explicitly.

The resolved precision, not the request, is what encoders put in their config: it is part of
the feature-cache fingerprint (fp32 and bf16 features never share an entry) and of the saved
model, so a model keeps the precision it was evaluated with on every machine.

No torch at import time (this module is imported by encoder modules on the registry's path).
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger("textransfer.precision")

Precision = Literal["auto", "fp32", "bf16", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")
# Registered encoders that take a `precision` setting (the error for the others names these).
ENCODERS_WITH_PRECISION: tuple[str, ...] = ("transformer", "sentence")
MIXED_PRECISIONS: tuple[str, ...] = ("auto", "no", "bf16", "fp16")


@dataclass(frozen=True)
class Capabilities:
    """What the machine offers for low-precision arithmetic.

    Attributes:
        cpu: the CPU's model name (``/proc/cpuinfo``), or "" when unknown.
        amx_bf16: the CPU has AMX tiles with bf16 (and the OS enabled them).
        avx512_bf16: the CPU has AVX-512 BF16 dot-product instructions.
        gpu_bf16: a CUDA GPU is present and supports bf16.
    """

    cpu: str = ""
    amx_bf16: bool = False
    avx512_bf16: bool = False
    gpu_bf16: bool = False

    def describe(self) -> str:
        """``"Intel(R) Xeon(R) ... (avx512_bf16: yes, amx_bf16: no, GPU bf16: no)"``."""
        yes = {True: "yes", False: "no"}
        return (
            f"{self.cpu or 'unknown CPU'} (avx512_bf16: {yes[self.avx512_bf16]}, "
            f"amx_bf16: {yes[self.amx_bf16]}, GPU bf16: {yes[self.gpu_bf16]})"
        )


def _cpuinfo() -> tuple[str, set[str]]:
    """The CPU model name and flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return "", set()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    return model, set(flags)


@functools.lru_cache(maxsize=1)
def detect_capabilities() -> Capabilities:
    """The machine's :class:`Capabilities` (computed once per process).

    AMX needs both the CPU flag and the OS's permission to use the tiles; torch's own check
    (``torch.cpu._is_amx_tile_supported``) covers both, the flags are the fallback.
    """
    model, flags = _cpuinfo()
    amx = "amx_bf16" in flags
    gpu = False
    try:
        import torch

        check = getattr(torch.cpu, "_is_amx_tile_supported", None)
        if callable(check):
            amx = amx and bool(check())
        gpu = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    except (ImportError, RuntimeError, AssertionError):
        pass
    return Capabilities(cpu=model, amx_bf16=amx, avx512_bf16="avx512_bf16" in flags, gpu_bf16=gpu)


def check_precision(precision: object, who: str) -> str:
    """Returns ``precision`` or raises ValueError naming ``who`` and the allowed values."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"{who}: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    return str(precision)


def _bf16_fast(caps: Capabilities, device: str) -> tuple[bool, str]:
    """Whether bf16 is faster than fp32 on ``device`` (``"cpu"`` / ``"cuda"``), and why."""
    if device == "cuda":
        if caps.gpu_bf16:
            return True, "the GPU supports bf16"
        return False, "the GPU lacks bf16 support"
    if caps.amx_bf16:
        return True, "the CPU has AMX bf16 tiles"
    if caps.avx512_bf16:
        return False, (
            "the CPU has AVX-512 BF16 but no AMX, where bf16 measured slower than fp32 "
            "(docs/benchmark-notes.md)"
        )
    return False, "the CPU has no bf16 units (neither AMX nor AVX-512 BF16)"


@functools.lru_cache(maxsize=64)
def _log_once(who: str, requested: str, chosen: str, reason: str) -> None:
    # Encoders are rebuilt often (loading, fingerprints): one line per distinct choice per process.
    logger.info("%s precision: %s (requested %s): %s", who, chosen, requested, reason)


def resolve_precision(
    precision: str, who: str = "encoder", device: str = "cpu", caps: Capabilities | None = None
) -> str:
    """The precision to run: ``auto`` resolved for ``device``, the others checked.

    Logs the choice and its reason once (INFO, logger ``textransfer.precision``). Forcing
    ``bf16`` where it is slower (no AMX on a CPU, no bf16 on a GPU) works but warns.

    Args:
        precision: ``auto``, ``fp32``, ``bf16`` or ``int8``.
        who: the encoder's name, for messages.
        device: ``"cpu"`` or ``"cuda"``.
        caps: the machine's capabilities (default: :func:`detect_capabilities`).

    Returns:
        ``fp32``, ``bf16`` or ``int8``.

    Raises:
        ValueError: an unknown name, or ``int8`` on a GPU (the int8 kernels are CPU ones).
    """
    check_precision(precision, who)
    caps = caps or detect_capabilities()
    fast, why = _bf16_fast(caps, device)
    if precision == "auto":
        chosen = "bf16" if fast else "fp32"
        _log_once(who, precision, chosen, why)
        return chosen
    if precision == "int8" and device != "cpu":
        raise ValueError(f"{who}: precision 'int8' runs on the CPU only; use bf16 or fp32 on {device}")
    if precision == "bf16" and not fast:
        warnings.warn(
            f"{who}: precision 'bf16' on {caps.describe()}: {why}; it works but will be slow. "
            "Use precision: auto (fp32 here) for speed",
            UserWarning,
            stacklevel=3,
        )
    if precision == "int8" and caps.amx_bf16:
        # Measured on a 16-core Xeon with AMX (docs/benchmark-notes.md): onnxruntime's int8
        # MiniLM encoded at 0.7-0.9x sentence-transformers fp32, bf16 at 2.0-2.4x.
        warnings.warn(
            f"{who}: precision 'int8' on {caps.describe()}: the int8 graph runs on onnxruntime, "
            "which measured slower here than bf16 on the CPU's AMX units (and than fp32). "
            "Use precision: auto (bf16 here) for speed; keep int8 for a smaller model file",
            UserWarning,
            stacklevel=3,
        )
    _log_once(who, precision, precision, "as configured")
    return precision


def resolve_mixed_precision(value: str | None, device: str = "cpu", caps: Capabilities | None = None) -> str | None:
    """Accelerate's ``mixed_precision`` for a ``training.mixed_precision`` setting.

    ``auto`` becomes ``"bf16"`` where bf16 is faster on ``device`` (see :func:`resolve_precision`)
    and ``"no"`` elsewhere; the other values pass through (None: the launcher's setting).
    """
    if value != "auto":
        return value
    caps = caps or detect_capabilities()
    fast, why = _bf16_fast(caps, device)
    chosen = "bf16" if fast else "no"
    _log_once("training", "auto", chosen, why)
    return chosen


def check_encoder_precision(encoder: str, params: dict[str, object], section: str) -> None:
    """Config-load check of an encoder's ``precision`` (called by :mod:`textransfer.config`).

    Raises:
        ValueError: an unknown precision name, naming ``section`` and the allowed values; or
            ``precision`` on an encoder that has none (TF-IDF, static vectors, image encoders),
            naming the encoders that do (a ValueError, so that config loading reports it with
            the file's name like every other config problem).
    """
    if "precision" not in params:
        return
    check_precision(params["precision"], f"{section}.precision")
    if encoder not in ENCODERS_WITH_PRECISION:
        raise ValueError(
            f"{section}.precision: the {encoder!r} encoder cannot run in "
            f"{params['precision']} (no precision setting); precision applies to the "
            f"{' and '.join(ENCODERS_WITH_PRECISION)} encoders. Remove the key"
        )
