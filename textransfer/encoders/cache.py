"""On-disk cache of frozen features, keyed by encoder fingerprint + data fingerprint.

Frozen features are computed once (as Flair caches static embeddings): a second run of the same
config reads ``.npy`` files (memory-mapped) instead of encoding again.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("textransfer.cache")


def default_cache_dir() -> Path:
    """``$TEXTRANSFER_CACHE`` or ``~/.cache/textransfer/features``."""
    env = os.environ.get("TEXTRANSFER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "textransfer" / "features"


class FeatureCache:
    """Stores ``(n, dim)`` float32 feature arrays under a key.

    Args:
        directory: where the ``.npy`` files live (created on first write); None disables caching.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(encoder: Any, data: Any) -> str:
        return f"{encoder.name}-{encoder.fingerprint()}-{data.fingerprint()}"

    def get(self, key: str) -> np.ndarray | None:
        if self.directory is None:
            return None
        path = self.directory / f"{key}.npy"
        if not path.exists():
            return None
        try:
            return np.load(path, mmap_mode="r")
        except (ValueError, OSError) as exc:  # truncated or corrupt: recompute
            logger.warning("ignoring unreadable cached features %s (%s)", path, exc)
            return None

    def put(self, key: str, features: np.ndarray) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file, then rename: a crash never leaves a partial cache entry.
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, features)
        os.replace(tmp, self.directory / f"{key}.npy")


def encode_cached(
    encoder: Any,
    data: Any,
    cache: FeatureCache | None,
    batch_size: int = 32,
    encode_fn: Callable[[list[Any]], np.ndarray] | None = None,
) -> np.ndarray:
    """Features of ``data.texts`` from ``cache`` when present, else encoded and stored.

    Args:
        encoder: an Encoder (its fingerprint identifies its output).
        data: a LabeledTexts (its fingerprint identifies the inputs).
        cache: a FeatureCache, or None to always encode.
        encode_fn: computes the features instead of ``encoder.encode`` (the frozen strategy
            passes the multi-process encode of :mod:`textransfer.training.sharding`).
    Returns:
        float32 array ``(len(data), encoder.dim)``.
    """
    encode = encode_fn or partial(encoder.encode, batch_size=batch_size)
    if cache is None:
        return encode(data.texts)
    key = FeatureCache.key(encoder, data)
    hit = cache.get(key)
    if hit is not None and hit.shape[0] == len(data):
        cache.hits += 1
        logger.info("features for %s (%d rows) read from cache", data.domain, len(data))
        return hit
    cache.misses += 1
    features = encode(data.texts)
    cache.put(key, features)
    return features


def check_chunk_size(chunk_size: int) -> int:
    """Returns ``chunk_size`` or raises ValueError when it is below 1."""
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1 (rows encoded at once), got {chunk_size!r}")
    return chunk_size


def write_npy_stream(path: str | Path, chunks: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Writes float32 row chunks, one after another, as one ``.npy`` file of ``shape``.

    Chunks go through ordinary file writes, never through a writable memory map: pages of a
    mapped file that a process has touched count in its resident memory until the kernel drops
    them, so a 1M-row memmap written in place grows the writer's RSS with the file. The file is
    written under a temporary name and renamed once complete (a crash leaves no partial file).

    Args:
        path: the ``.npy`` file to write (its folder is created).
        chunks: float arrays ``(rows_i, shape[1])`` whose rows add up to ``shape[0]``.
        shape: ``(rows, dim)`` of the whole array.

    Returns:
        The finished file, memory-mapped read-only: float32 ``shape``.
    """
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    rows = 0
    try:
        with tmp.open("wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": shape}
            )
            for chunk in chunks:
                if chunk.ndim != 2 or chunk.shape[1] != shape[1]:
                    raise ValueError(f"feature chunk of shape {chunk.shape} does not fit ({shape[0]}, {shape[1]})")
                rows += len(chunk)
                if rows > shape[0]:
                    raise ValueError(f"feature chunks hold more than the {shape[0]} rows announced")
                f.write(np.ascontiguousarray(chunk, dtype="<f4").data)
        if rows != shape[0]:
            raise ValueError(f"feature chunks hold {rows} rows, {shape[0]} announced")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return np.load(dst, mmap_mode="r")


def encode_streamed(
    encoder: Any,
    texts: Sequence[Any],
    path: str | Path,
    batch_size: int = 32,
    chunk_size: int = 10_000,
    encode_fn: Callable[[list[Any]], np.ndarray] | None = None,
) -> np.ndarray:
    """Encodes ``texts`` chunk by chunk into a ``.npy`` file and returns it memory-mapped.

    Peak memory is one chunk of inputs and features, whatever ``len(texts)``: features go to
    disk as they are computed (:func:`write_npy_stream`), never into one in-memory array, and
    ``texts`` is only sliced one chunk at a time (pass a sequence that builds slices lazily to
    keep the inputs off memory too).

    Args:
        encoder: an Encoder.
        texts: the inputs (a list, or any sequence that slices lazily).
        path: the ``.npy`` file to write.
        batch_size: passed to ``encoder.encode``.
        chunk_size: inputs encoded per call (and held in memory at once).
        encode_fn: computes one chunk's features instead of ``encoder.encode`` (the
            multi-process encode of :mod:`textransfer.training.sharding` passes its own).

    Returns:
        A read-only memory-mapped float32 array ``(len(texts), encoder.dim)``, equal to
        ``encoder.encode(texts)``.

    Example:
        >>> feats = encode_streamed(encoder, texts, "features.npy")  # doctest: +SKIP
    """
    check_chunk_size(chunk_size)
    fn = encode_fn or partial(encoder.encode, batch_size=batch_size)
    n = len(texts)
    chunks = (fn(list(texts[start : start + chunk_size])) for start in range(0, n, chunk_size))
    return write_npy_stream(path, chunks, (n, encoder.dim))
