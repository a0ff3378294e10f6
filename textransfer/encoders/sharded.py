"""Frozen encoding shared across processes (see :mod:`textransfer.distributed`): each process
encodes a shard and every process gets all rows, in input order, equal to a one-process encode.

Launch with ``torchrun --nproc_per_node N script.py``; under a single process these are plain
``encoder.encode`` / :func:`~textransfer.encoders.cache.encode_streamed` calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from textransfer.distributed import _state, is_multi_process, sharded
from textransfer.encoders.cache import check_chunk_size, encode_streamed


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
