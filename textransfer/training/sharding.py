"""Frozen encoding and prediction across processes: each process takes a contiguous shard of the
inputs (accelerate's ``PartialState.split_between_processes``) and the results are gathered back
in input order, so a multi-process run returns exactly what one process would.

Launch with ``torchrun --nproc_per_node N script.py`` (or ``accelerate launch`` on GPUs). Under a
single process every function here is a plain pass-through and accelerate is not imported.

Example:
    >>> from textransfer.training.sharding import sharded
    >>> encode = sharded(lambda texts: encoder.encode(texts, batch_size=64))  # doctest: +SKIP
    >>> feats = encode(texts)  # doctest: +SKIP  (every process gets all rows, in input order)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from textransfer.encoders.cache import check_chunk_size, encode_streamed

ArrayFn = Callable[[list[Any]], np.ndarray]


def is_multi_process() -> bool:
    """True under a launcher that started more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _state() -> Any:
    from accelerate import PartialState

    from textransfer.training.loop import _multi_process_cpu

    # Same backend choice as the training loop: gloo on CPU-only machines, else accelerate's own.
    return PartialState(cpu=_multi_process_cpu())


def is_main_process() -> bool:
    """True in a single process and in the main process of a multi-process run."""
    return not is_multi_process() or _state().is_main_process


def wait_for_everyone() -> None:
    """A barrier across processes (nothing under a single process)."""
    if is_multi_process():
        _state().wait_for_everyone()


def end_processes() -> None:
    """Ends the process group at the end of a multi-process script, after a barrier, so that no
    process exits while another still exchanges data with it. No sharded call may follow."""
    if is_multi_process():
        state = _state()
        state.wait_for_everyone()
        state.destroy_process_group()


def gather_rows(local: np.ndarray) -> np.ndarray:
    """Concatenates every process's ``(n_i, d)`` rows in process order; shards may differ in size.

    Each shard is padded to the largest one (``gather`` needs equal shapes), gathered, then
    trimmed back to its true size, so the result has exactly ``sum(n_i)`` rows.
    """
    import torch
    from accelerate.utils import gather

    state = _state()
    local = np.ascontiguousarray(local)
    sizes = gather(torch.tensor([len(local)], device=state.device)).cpu().tolist()
    width = max(sizes)
    padded = np.zeros((width, *local.shape[1:]), dtype=local.dtype)
    padded[: len(local)] = local
    everything = gather(torch.from_numpy(padded).to(state.device)).cpu().numpy()
    return np.concatenate([everything[r * width : r * width + n] for r, n in enumerate(sizes)])


def sharded(fn: ArrayFn) -> ArrayFn:
    """Wraps ``fn(items) -> (len(items), d) array`` to run on this process's shard and gather.

    ``fn`` must accept an empty list (returning ``(0, d)``): with fewer items than processes some
    shards are empty. Every process must call the wrapped function with the same items, in the
    same order of calls (each call is a collective). Under a single process ``fn`` is returned
    unchanged.
    """
    if not is_multi_process():
        return fn

    def run(items: list[Any]) -> np.ndarray:
        items = list(items)
        if not items:  # every process sees the same empty list: nothing to exchange
            return fn(items)
        with _state().split_between_processes(items) as shard:
            local = fn(list(shard))
        return gather_rows(local)

    return run


def encode_sharded(encoder: Any, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
    """``encoder.encode(inputs)`` computed across processes; every process gets all rows.

    Returns:
        float32 ``(len(inputs), encoder.dim)``, in input order, equal to a one-process encode.
    """
    return sharded(partial(encoder.encode, batch_size=batch_size))(list(inputs))


def encode_streamed_sharded(
    encoder: Any, texts: Sequence[Any], path: str | Path, batch_size: int = 32, chunk_size: int = 10_000
) -> np.ndarray:
    """:func:`~textransfer.encoders.cache.encode_streamed` with each chunk shared across processes.

    The main process writes the ``.npy``; the others encode their shards of each chunk. All
    processes return the finished file, memory-mapped, once it is complete.
    """
    check_chunk_size(chunk_size)
    encode = sharded(partial(encoder.encode, batch_size=batch_size))
    if not is_multi_process():
        return encode_streamed(encoder, texts, path, chunk_size=chunk_size, encode_fn=encode)
    state = _state()
    if state.is_main_process:
        encode_streamed(encoder, texts, path, chunk_size=chunk_size, encode_fn=encode)
    else:
        for start in range(0, len(texts), chunk_size):  # take part in each chunk's gather
            encode(list(texts[start : start + chunk_size]))
    state.wait_for_everyone()
    return np.load(path, mmap_mode="r")
