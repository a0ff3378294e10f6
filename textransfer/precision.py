"""Numeric precision of encoding and fine-tuning: ``auto | fp32 | bf16 | int8``, resolved per machine.

``auto`` picks bf16 only where it is faster than fp32:

- CPUs with AMX tiles (Intel Sapphire Rapids and later; MiniLM encoding 1.7-1.9x under bf16
  autocast) and GPUs that support bf16: bf16.
- CPUs with AVX-512 BF16 but no AMX: it depends on the CPU, so it is measured. On a 2-core Intel
  Xeon of that kind a 2048x2048 matmul ran at 162 GFLOP/s in bf16 against 288 in fp32 (MiniLM
  encoding 0.4-0.5x); on a 2-core AMD EPYC (Zen 4) at 406 against 169 (MiniLM encoding 1.8x)
  (docs/benchmark-notes.md). A short probe (an encoder-sized matrix multiply in both precisions,
  about 0.2 s) decides once per CPU model and torch version; its result is kept in
  ``$XDG_CACHE_HOME/textransfer/precision.json`` so that every later run on the machine makes
  the same choice (feature-cache entries stay valid). bf16 is chosen from a measured 1.3x up.
- Other CPUs: fp32.

``int8`` is never picked automatically (its features move by about 1% in cosine); it is
requested explicitly.

The resolved precision, not the request, is what encoders put in their config: it is part of
the feature-cache fingerprint (fp32 and bf16 features never share an entry) and of the saved
model, so a model keeps the precision it was evaluated with on every machine, unless its caller
asks for another (``textransfer.load(..., precision="auto")``, ``--precision`` on ``predict``,
``evaluate`` and ``serve``): a model saved at bf16 where bf16 is fast warns, when loaded where it
is slow (:class:`SlowPrecisionWarning`), and names that way out.

No torch at import time (this module is imported by encoder modules on the registry's path).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from textransfer._folders import cache_path

logger = logging.getLogger("textransfer.precision")

Precision = Literal["auto", "fp32", "bf16", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")
# Registered encoders that take a `precision` setting (the error for the others names these).
ENCODERS_WITH_PRECISION: tuple[str, ...] = ("transformer", "sentence")
MIXED_PRECISIONS: tuple[str, ...] = ("auto", "no", "bf16", "fp16")
# bf16 / fp32 speed of the probe's matrix multiply from which a CPU without AMX runs bf16.
BF16_PROBE_MIN_SPEEDUP = 1.3


@dataclass(frozen=True)
class Capabilities:
    """What the machine offers for low-precision arithmetic.

    Attributes:
        cpu: the CPU's model name (``/proc/cpuinfo``), or "" when unknown.
        amx_bf16: the CPU has AMX tiles with bf16 (and the OS enabled them).
        avx512_bf16: the CPU has AVX-512 BF16 dot-product instructions.
        gpu_bf16: a CUDA GPU is present and supports bf16.
        cpu_bf16_speedup: on an AVX-512 BF16 CPU without AMX, how much faster the probe's
            matrix multiply ran in bf16 than in fp32 (:func:`cpu_bf16_speedup`); None where
            it was not measured (other CPUs, or the probe failed).
    """

    cpu: str = ""
    amx_bf16: bool = False
    avx512_bf16: bool = False
    gpu_bf16: bool = False
    cpu_bf16_speedup: float | None = None

    def describe(self) -> str:
        """``"AMD EPYC (avx512_bf16: yes, amx_bf16: no, bf16 matmul 2.3x fp32, GPU bf16: no)"``."""
        yes = {True: "yes", False: "no"}
        probe = "" if self.cpu_bf16_speedup is None else f"bf16 matmul {self.cpu_bf16_speedup:.2f}x fp32, "
        return (
            f"{self.cpu or 'unknown CPU'} (avx512_bf16: {yes[self.avx512_bf16]}, "
            f"amx_bf16: {yes[self.amx_bf16]}, {probe}GPU bf16: {yes[self.gpu_bf16]})"
        )


def _cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str, set[str]]:
    """The CPU and its flags from ``/proc/cpuinfo`` (empty where there is none).

    The CPU is its model name with its family and model numbers where the file has them
    (``"AMD EPYC (family 25, model 17)"``): virtual machines often show a generic name that
    several CPU generations share.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return "", set()

    def field(name: str) -> str:
        return next((ln.split(":", 1)[1].strip() for ln in lines if ln.split(":", 1)[0].strip() == name), "")

    model = field("model name")
    if field("cpu family") and field("model"):
        model = f"{model or 'CPU'} (family {field('cpu family')}, model {field('model')})"
    flags = field("flags").split()
    return model, set(flags)


def _measure_bf16_speedup(rounds: int = 5, reps: int = 4) -> float:
    """fp32 time / bf16 time of an encoder-sized linear layer on this CPU (about 0.2 s).

    A (512 x 384) @ (384 x 1536) product, the shape of a MiniLM feed-forward layer on a batch of
    tokens; best of ``rounds`` interleaved rounds of ``reps`` products in each precision.
    """
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 384, generator=gen)
    w = torch.randn(1536, 384, generator=gen)
    cases = {"fp32": (x, w), "bf16": (x.bfloat16(), w.bfloat16())}
    best = {name: float("inf") for name in cases}
    with torch.no_grad():
        for a, b in cases.values():  # warm-up: kernel selection, first-touch allocation
            torch.nn.functional.linear(a, b)
        for _ in range(rounds):
            for name, (a, b) in cases.items():
                start = time.perf_counter()
                for _ in range(reps):
                    torch.nn.functional.linear(a, b)
                best[name] = min(best[name], time.perf_counter() - start)
    return best["fp32"] / max(best["bf16"], 1e-9)


def _probe_file() -> Path:
    return cache_path("precision.json")


def cpu_bf16_speedup(cpu: str) -> float | None:
    """How much faster bf16 matrix multiplies run than fp32 on this CPU (measured once).

    The result is kept per CPU model and torch version in ``precision.json`` under the
    textransfer cache folder, so that ``auto`` makes the same choice in every run on a machine;
    delete the file to measure again. Returns None where torch is missing or the probe fails,
    and in a multi-process launch (``WORLD_SIZE`` > 1) with no recorded value: processes that
    probe at once could decide differently, so there only a recorded probe counts.
    """
    try:
        import torch
    except ImportError:
        return None
    key = f"{cpu or 'unknown CPU'} | torch {torch.__version__}"
    path = _probe_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    value = known.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    from textransfer.distributed import is_multi_process

    if is_multi_process():
        # Processes of one launch probing at once could decide differently (and a sharded
        # encode would mix precisions): under a launcher only a recorded probe counts.
        logger.info(
            "no recorded bf16 probe for %s in %s and this is a multi-process launch: fp32. "
            "Run any textransfer command once in a single process to record it", cpu or "this CPU", path,
        )
        return None
    try:
        speedup = round(_measure_bf16_speedup(), 3)
    except RuntimeError as exc:  # a torch build without bf16 matmul on this CPU
        logger.info("bf16 probe failed on %s: %s", cpu or "this CPU", exc)
        return None
    known[key] = speedup
    try:  # atomic: concurrent processes each write a whole file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home: measure again next process
        logger.info("could not record the bf16 probe in %s: %s", path, exc)
    return speedup


@functools.lru_cache(maxsize=1)
def detect_capabilities() -> Capabilities:
    """The machine's :class:`Capabilities` (computed once per process).

    AMX needs both the CPU flag and the OS's permission to use the tiles; torch's own check
    (``torch.cpu._is_amx_tile_supported``) covers both, the flags are the fallback. A CPU with
    AVX-512 BF16 and no AMX is probed (:func:`cpu_bf16_speedup`).
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
    avx512_bf16 = "avx512_bf16" in flags
    speedup = cpu_bf16_speedup(model) if avx512_bf16 and not amx else None
    return Capabilities(
        cpu=model, amx_bf16=amx, avx512_bf16=avx512_bf16, gpu_bf16=gpu, cpu_bf16_speedup=speedup
    )


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
        x = caps.cpu_bf16_speedup
        if x is None:
            return False, (
                "the CPU has AVX-512 BF16 but no AMX, and bf16 was not measured (a failed probe, or "
                "a multi-process launch before any single-process run recorded one)"
            )
        verdict = f"AVX-512 BF16 without AMX; bf16 matrix multiplies measured {x:.2f}x fp32 here"
        if x >= BF16_PROBE_MIN_SPEEDUP:
            return True, verdict
        return False, f"{verdict} (bf16 from {BF16_PROBE_MIN_SPEEDUP}x)"
    return False, "the CPU has no bf16 units (neither AMX nor AVX-512 BF16)"


class SlowPrecisionWarning(UserWarning):
    """A precision was requested (or saved with a model) that runs slower on this machine than
    ``auto`` would: bf16 without fast bf16 units, int8 where AMX makes bf16 faster."""


@functools.lru_cache(maxsize=64)
def _log_once(who: str, requested: str, chosen: str, reason: str) -> None:
    # Encoders are rebuilt often (loading, fingerprints): one line per distinct choice per process.
    logger.info("%s precision: %s (requested %s): %s", who, chosen, requested, reason)


def resolve_precision(
    precision: str, who: str = "encoder", device: str = "cpu", caps: Capabilities | None = None
) -> str:
    """The precision to run: ``auto`` resolved for ``device``, the others checked.

    Logs the choice and its reason once (INFO, logger ``textransfer.precision``). Forcing
    ``bf16`` where it is slower (a CPU without AMX where the probe did not find bf16 faster, a
    GPU without bf16) works but warns.

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
            SlowPrecisionWarning,
            stacklevel=3,
        )
    if precision == "int8" and caps.amx_bf16:
        # Measured on a 16-core Xeon with AMX (docs/benchmark-notes.md): onnxruntime's int8
        # MiniLM encoded at 0.7-0.9x sentence-transformers fp32, bf16 at 2.0-2.4x.
        warnings.warn(
            f"{who}: precision 'int8' on {caps.describe()}: the int8 graph runs on onnxruntime, "
            "which measured slower here than bf16 on the CPU's AMX units (and than fp32). "
            "Use precision: auto (bf16 here) for speed; keep int8 for a smaller model file",
            SlowPrecisionWarning,
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


def bf16_eager_attention(caps: Capabilities | None = None) -> bool:
    """Whether bf16 encoding copies run eager attention (two batched matrix multiplies and a
    softmax) instead of torch's SDPA kernel: on CPUs with AVX-512 BF16 but no AMX. Measured on a
    2-core AMD EPYC Zen 4, MiniLM bf16 encoding of 1,500 product sentences ran at 1.06-1.29x
    (median 1.09x; 5 interleaved repeats) and 1.03x (the encode benchmark) of the SDPA copy's
    speed, with the same features (min cosine to fp32 0.99982 against 0.99981): SDPA's CPU
    flash-attention kernel was 17% of the bf16 encode there, on sentences of tens of tokens. In
    fp32 eager attention is slower (0.92x; fine-tuning 0.81x), and AMX CPUs and GPUs were not
    measured with it, so they keep SDPA (``textransfer/encoders/_fast.py`` applies it)."""
    caps = caps or detect_capabilities()
    return caps.avx512_bf16 and not caps.amx_bf16


def describe_machine(device: str | None = None, caps: Capabilities | None = None) -> list[str]:
    """What ``auto`` picks on this machine and why (``textransfer list precision``).

    Args:
        device: ``"cpu"`` or ``"cuda"`` (default: cuda where torch sees a GPU, else cpu).
        caps: the machine's capabilities (default: :func:`detect_capabilities`).

    Returns:
        Lines: the CPU and its bf16 features, the probe's file, and what ``precision: auto``
        (encoding, prediction) and ``training.mixed_precision: auto`` resolve to, with the reason.
    """
    caps = caps or detect_capabilities()
    if device is None:
        try:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            device = "cpu"
    fast, why = _bf16_fast(caps, device)
    lines = [f"machine: {caps.describe()}", f"device: {device}"]
    if caps.cpu_bf16_speedup is not None:
        lines.append(f"bf16 probe: {caps.cpu_bf16_speedup:.2f}x fp32, recorded in {_probe_file()} "
                     "(delete the file to measure again)")
    lines += [
        f"precision auto (encoding, prediction): {'bf16' if fast else 'fp32'}: {why}",
        f"training.mixed_precision auto: {'bf16' if fast else 'no'}",
    ]
    if device == "cpu" and bf16_eager_attention(caps):
        lines.append("bf16 encoding attention: eager (1.03-1.09x the speed of SDPA's CPU kernel, measured on an "
                     "AMD EPYC Zen 4; models of up to 512 positions)")
    return lines


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
