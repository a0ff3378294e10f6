"""Shared helpers of the bench scripts: timing medians, machine description, markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

# The scripts run from a checkout: make the repository's textransfer importable without installing.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

PACKAGES = ("textransfer", "torch", "transformers", "sentence-transformers", "gensim", "numpy")


def machine() -> str:
    """One line: CPU, cores, Python and package versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    versions = []
    for pkg in PACKAGES:
        try:
            versions.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    threads = ""
    try:
        import torch

        threads = f", torch threads {torch.get_num_threads()}"
    except ImportError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{threads}; Python {platform.python_version()}; "
        + ", ".join(versions)
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def interleaved(cases: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Runs every case once per round, ``repeats`` rounds, so load changes hit all cases alike.

    Returns:
        case name -> list of seconds, one per round.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(timed(fn)[0])
    return times


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"{c:.4g}" if isinstance(c, float) else str(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(value: float, goal: float, higher_is_better: bool = True) -> str:
    ok = value >= goal if higher_is_better else value <= goal
    return f"{'MET' if ok else 'MISSED'} (goal {'>=' if higher_is_better else '<='} {goal:g})"


class SyntheticCorpus:
    """``n`` sentences: the 13,057 packaged movie and product sentences repeated in order, built
    one slice at a time (a lazy sequence: ``corpus[a:b]`` is a list of ``b - a`` texts)."""

    def __init__(self, n: int) -> None:
        from textransfer.data import load

        self.base = load("movies").texts + load("products").texts
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, s: slice) -> list[str]:
        return [self.base[i % len(self.base)] for i in range(*s.indices(self.n))]


def bench_encoder(name: str) -> Any:
    """``glove``: static GloVe 6B 50d, mean pooling; ``minilm``: all-MiniLM-L6-v2 transformer,
    mean pooling, max_length 128 (``minilm-int8``: with int8 linear layers)."""
    from textransfer.encoders import create_encoder

    if name == "glove":
        return create_encoder("static", vectors="glove-6b-50d", pooling="mean")
    precision = "int8" if name.endswith("int8") else "fp32"
    return create_encoder("transformer", model="all-MiniLM-L6-v2", max_length=128, precision=precision)
