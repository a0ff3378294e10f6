"""On-disk cache of frozen features, keyed by encoder fingerprint + data fingerprint.

Frozen features are computed once (as Flair caches static embeddings): a second run of the same
config reads ``.npy`` files (memory-mapped) instead of encoding again.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
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


def encode_cached(encoder: Any, data: Any, cache: FeatureCache | None, batch_size: int = 32) -> np.ndarray:
    """Features of ``data.texts`` from ``cache`` when present, else encoded and stored.

    Args:
        encoder: an Encoder (its fingerprint identifies its output).
        data: a LabeledTexts (its fingerprint identifies the inputs).
        cache: a FeatureCache, or None to always encode.
    Returns:
        float32 array ``(len(data), encoder.dim)``.
    """
    if cache is None:
        return encoder.encode(data.texts, batch_size=batch_size)
    key = FeatureCache.key(encoder, data)
    hit = cache.get(key)
    if hit is not None and hit.shape[0] == len(data):
        cache.hits += 1
        logger.info("features for %s (%d rows) read from cache", data.domain, len(data))
        return hit
    cache.misses += 1
    features = encoder.encode(data.texts, batch_size=batch_size)
    cache.put(key, features)
    return features


def encode_streamed(
    encoder: Any,
    texts: Sequence[Any],
    path: str | Path,
    batch_size: int = 32,
    chunk_size: int = 10_000,
) -> np.ndarray:
    """Encodes ``texts`` chunk by chunk into a ``.npy`` file and returns it memory-mapped.

    Peak memory is one chunk of inputs and features, whatever ``len(texts)``: features go to
    disk as they are computed (``np.lib.format.open_memmap``), never into one in-memory array.
    The file is written under a temporary name and renamed when complete.

    Args:
        encoder: an Encoder.
        texts: the inputs (a list, or any sequence that slices lazily).
        path: the ``.npy`` file to write.
        batch_size: passed to ``encoder.encode``.
        chunk_size: inputs encoded per call (and held in memory at once).

    Returns:
        A read-only memory-mapped float32 array ``(len(texts), encoder.dim)``, equal to
        ``encoder.encode(texts)``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    n = len(texts)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, encoder.dim))
    try:
        for start in range(0, n, chunk_size):
            out[start : start + chunk_size] = encoder.encode(
                list(texts[start : start + chunk_size]), batch_size=batch_size
            )
        out.flush()
    finally:
        del out
    os.replace(tmp, dst)
    return np.load(dst, mmap_mode="r")
