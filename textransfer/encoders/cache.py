"""On-disk cache of frozen features, keyed by encoder fingerprint + data fingerprint.

Frozen features are computed once (as Flair caches static embeddings): a second run of the same
config reads ``.npy`` files (memory-mapped) instead of encoding again.

Each ``KEY.npy`` has a sidecar ``KEY.meta.json`` written with it: shape, dtype, size and a
CRC-32 checksum of the file. An entry is used only when the file still matches its sidecar and
its shape fits the request (rows of the data, the encoder's dimension); anything else (truncated,
replaced or edited bytes, a wrong shape, no sidecar) is logged as a warning and recomputed.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("textransfer.cache")

META_SUFFIX = ".meta.json"


def file_checksum(path: Path) -> str:
    """CRC-32 of a file's bytes, computed over a read-only memory map (no copies).

    A cache hit must stay cheap (the benchmark goal: a second run >= 50x faster than the first):
    CRC-32 runs at several GB/s, where SHA-256 took 1.3 ms (idle) to 5 ms (busy machine) for the
    2 MB of one GloVe entry, as much again as the rest of a hit. It catches truncation, edits and
    replaced contents (a different array passes with probability 2**-32); the cache is the
    user's own folder, so deliberate forgery is not what it guards against.
    """
    crc = 0
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                view = memoryview(m)
                try:
                    for start in range(0, size, 1 << 26):
                        crc = zlib.crc32(view[start : start + (1 << 26)], crc)
                finally:
                    view.release()
    return f"{crc:08x}"


class FeatureCache:
    """Stores ``(n, dim)`` float32 feature arrays under a key, each with a checksummed sidecar.

    Args:
        directory: where the ``.npy`` files live (created on first write); None disables caching.

    Attributes:
        hits, misses: counted by :func:`encode_cached`.
        rejected: entries found on disk but not used (corrupt, or of the wrong shape).
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.hits = 0
        self.misses = 0
        self.rejected = 0

    @staticmethod
    def key(encoder: Any, data: Any) -> str:
        return f"{encoder.name}-{encoder.fingerprint()}-{data.fingerprint()}"

    def get(self, key: str, rows: int | None = None, dim: int | Callable[[], int] | None = None) -> np.ndarray | None:
        """The cached array of ``key`` (memory-mapped), or None when absent or unusable.

        Args:
            key: see :meth:`key`.
            rows: the number of rows the caller needs (None: any).
            dim: the feature dimension the caller needs, or a function returning it (called only
                when everything else checks out: an encoder's ``dim`` may load its weights).
        """
        if self.directory is None:
            return None
        path = self.directory / f"{key}.npy"
        if not path.exists():
            return None
        features, problem = self._verified(path, rows, dim)
        if problem is not None:
            self.rejected += 1
            logger.warning("cached features %s are not used (%s); recomputing them", path, problem)
            return None
        return features

    def _verified(
        self, path: Path, rows: int | None, dim: int | Callable[[], int] | None
    ) -> tuple[np.ndarray | None, str | None]:
        """``(array, None)`` when ``path`` matches its sidecar and the requested shape, else
        ``(None, what is wrong)``."""
        try:
            meta = json.loads(path.with_name(path.name.removesuffix(".npy") + META_SUFFIX).read_text())
            want_shape, want_dtype, want_bytes, want_crc = (
                tuple(meta["shape"]), meta["dtype"], int(meta["bytes"]), meta["crc32"]
            )
        except FileNotFoundError:
            return None, "no checksum sidecar: written by an older version or by an interrupted write"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return None, f"unreadable checksum sidecar ({exc})"
        size = path.stat().st_size
        if size != want_bytes:
            return None, f"the file has {size} bytes, {want_bytes} were written (truncated or replaced)"
        try:
            features = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            return None, f"unreadable ({exc})"
        if features.shape != want_shape or features.dtype.str != want_dtype:
            return None, f"the file holds {features.dtype.str} {features.shape}, {want_dtype} {want_shape} were written"
        if file_checksum(path) != want_crc:
            return None, "its bytes changed since it was written (checksum mismatch)"
        if features.ndim != 2:
            return None, f"shape {features.shape} is not (rows, dim)"
        if rows is not None and features.shape[0] != rows:
            return None, f"it has {features.shape[0]} rows, the data has {rows}"
        if dim is not None:
            expected = dim() if callable(dim) else dim
            if features.shape[1] != expected:
                return None, f"its features have dimension {features.shape[1]}, the encoder gives {expected}"
        return features, None

    def put(self, key: str, features: np.ndarray) -> None:
        """Stores ``features`` under ``key``; a failed write is logged, never raised (the run
        goes on without caching this entry)."""
        if self.directory is None:
            return
        try:
            self._write(key, np.ascontiguousarray(features))
        except OSError as exc:
            logger.warning("could not write cached features to %s (%s); they are not cached", self.directory, exc)

    def _write(self, key: str, features: np.ndarray) -> None:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        # Temporary files, then renames: a crash never leaves a partial entry. The array goes
        # first; an entry whose sidecar is missing or stale fails its check and is recomputed.
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".npy.tmp")
        meta_tmp = Path(tmp).with_suffix(".meta.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, features)
            meta = {
                "shape": list(features.shape),
                "dtype": features.dtype.str,
                "bytes": Path(tmp).stat().st_size,
                "crc32": file_checksum(Path(tmp)),
            }
            meta_tmp.write_text(json.dumps(meta))
            os.replace(tmp, self.directory / f"{key}.npy")
            os.replace(meta_tmp, self.directory / f"{key}{META_SUFFIX}")
        finally:
            Path(tmp).unlink(missing_ok=True)
            meta_tmp.unlink(missing_ok=True)


def encode_cached(
    encoder: Any,
    data: Any,
    cache: FeatureCache | None,
    batch_size: int = 32,
    encode_fn: Callable[[list[Any]], np.ndarray] | None = None,
) -> np.ndarray:
    """Features of ``data.texts`` from ``cache`` when present and intact, else encoded and stored.

    Args:
        encoder: an Encoder (its fingerprint identifies its output).
        data: a LabeledTexts (its fingerprint identifies the inputs).
        cache: a FeatureCache, or None to always encode.
        batch_size: inputs per ``encoder.encode`` call.
        encode_fn: computes the features instead of ``encoder.encode`` (the frozen strategy
            passes the multi-process encode of :mod:`textransfer.distributed`).

    Returns:
        float32 array ``(len(data), encoder.dim)``.
    """
    encode = encode_fn or partial(encoder.encode, batch_size=batch_size)
    if cache is None:
        return encode(data.texts)
    key = FeatureCache.key(encoder, data)
    hit = cache.get(key, rows=len(data), dim=lambda: encoder.dim)
    if hit is not None:
        cache.hits += 1
        # One line per entry at DEBUG: a run reads hundreds; it logs one summary at the end
        # (log_cache_summary).
        logger.debug("features for %s (%d rows) read from cache", data.domain, len(data))
        return hit
    cache.misses += 1
    features = encode(data.texts)
    cache.put(key, features)
    return features


def log_cache_summary(what: str, hits: int, misses: int, rejected: int = 0) -> None:
    """One INFO line for a whole run: ``feature cache (crossdomain x): 24 hits, 3 misses``.

    Args:
        what: the run it sums up.
        hits: entries read from the cache.
        misses: entries encoded (and stored).
        rejected: entries found on disk but not usable (each was also logged as a warning).
    """
    if not hits and not misses:
        return
    bad = f", {rejected} rejected (recomputed)" if rejected else ""
    logger.info("feature cache (%s): %d hits, %d misses%s", what, hits, misses, bad)


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
            multi-process encode of :mod:`textransfer.distributed` passes its own).

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
