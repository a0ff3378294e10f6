"""Which process am I, and how do processes share work: the one place textransfer asks.

Under a launcher that starts several processes (``torchrun --nproc_per_node N``, ``accelerate
launch``) every process runs the same script; frozen encoding and prediction give each process a
contiguous shard of the inputs and gather the results back in input order
(:func:`sharded`), so a multi-process run returns exactly what one process would, and only the
main process writes files. Under a single process every function here is a pass-through and
accelerate is not imported.

Example:
    >>> from textransfer.distributed import sharded
    >>> encode = sharded(lambda texts: encoder.encode(texts, batch_size=64))  # doctest: +SKIP
    >>> feats = encode(texts)  # doctest: +SKIP

(every process gets all rows, in input order)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

ArrayFn = Callable[[list[Any]], np.ndarray]


def is_multi_process() -> bool:
    """True under a launcher that started more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """True in a single process and in rank 0 of a multi-process launch.

    Every process trains and evaluates; only the main process locks and writes run directories,
    reports and prediction files. Read from the launcher's ``RANK`` so that asking costs nothing.
    """
    return not is_multi_process() or os.environ.get("RANK", "0") == "0"


def cpu_only_multi_process() -> bool:
    """True under a multi-process launcher on a machine without a GPU.

    Accelerate only sets up gloo (``MULTI_CPU``) when told ``cpu=True``; without it, each process
    would train alone and they would overwrite each other's checkpoints.
    """
    if not is_multi_process():
        return False
    import torch

    return not torch.cuda.is_available()


def _state() -> Any:
    from accelerate import PartialState

    # Same backend choice as the training loop: gloo on CPU-only machines, else accelerate's own.
    return PartialState(cpu=cpu_only_multi_process())


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
